"""/api/hosts: the host registry, key scan and fingerprint confirmation."""

from __future__ import annotations

from handlers.access import UserError, requires
from handlers.base import ApiHandler
from services.registry.hosts import public_host


class HostsHandler(ApiHandler):
    @requires("viewer")
    async def get(self) -> None:
        group = self.get_query_argument("group", None)
        self.write_json({"hosts": await self.services.hosts.list(group)})

    @requires("admin")
    async def post(self) -> None:
        """One host, or {"hosts": [...]} to add many at once (all or none)."""
        body = self.get_json_body()
        if "hosts" in body:
            created = await self.services.hosts.create_many(body["hosts"])
            self.write_json({"hosts": created}, status=201)
            return
        host = await self.services.hosts.create(body)
        self.set_header("Location", f"/api/hosts/{host['name']}")
        self.write_json(host, status=201)


class HostHandler(ApiHandler):
    @requires("viewer")
    async def get(self, name: str) -> None:
        self.write_json(public_host(await self.services.hosts.get(name)))

    @requires("admin")
    async def put(self, name: str) -> None:
        self.write_json(await self.services.hosts.update(name, self.get_json_body()))

    @requires("admin")
    async def delete(self, name: str) -> None:
        await self.services.hosts.delete(name)
        self.set_status(204)
        self.finish()


class HostScanHandler(ApiHandler):
    @requires("admin")
    async def post(self, name: str) -> None:
        self.write_json(await self.services.hosts.scan(name))


class HostTrustHandler(ApiHandler):
    @requires("admin")
    async def post(self, name: str) -> None:
        fingerprint = self.get_json_body().get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint.startswith("SHA256:"):
            raise UserError(400, "fingerprint (SHA256:…) of the scanned key is required")
        self.write_json(await self.services.hosts.trust(name, fingerprint))
