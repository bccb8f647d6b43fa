"""/api/hosts: the host registry, key scan and fingerprint confirmation."""

from __future__ import annotations

from handlers.access import UserError, requires
from handlers.base import ApiHandler
from services.registry.hosts import public_host
from services.registry.redact import field_changes


class HostsHandler(ApiHandler):
    @requires("viewer")
    async def get(self) -> None:
        group = self.get_query_argument("group", None)
        self.write_json({"hosts": await self.services.hosts.list(group)})

    @requires("admin")
    async def post(self) -> None:
        """One host, {"hosts": [...]} to add many at once, or {"inventory": text,
        "format": "auto"|"ini"|"yaml"} to import an Ansible inventory (both all or none)."""
        body = self.get_json_body()
        if "inventory" in body:
            if set(body) - {"inventory", "format"}:
                raise UserError(400, "an inventory import takes only inventory and format")
            result = await self.services.hosts.import_inventory(
                body["inventory"], body.get("format", "auto"))
            await self.audit("host.import", details={
                "hosts": [host["name"] for host in result["hosts"]]})
            self.write_json(result, status=201)
            return
        if "hosts" in body:
            created = await self.services.hosts.create_many(body["hosts"])
            await self.services.audit.record_many(self.actor(), "host.create", [
                (host["name"], {"changes": field_changes(None, host)}) for host in created])
            self.write_json({"hosts": created}, status=201)
            return
        host = await self.services.hosts.create(body)
        await self.audit("host.create", host["name"],
                         details={"changes": field_changes(None, host)})
        self.set_header("Location", f"/api/hosts/{host['name']}")
        self.write_json(host, status=201)


class HostHandler(ApiHandler):
    @requires("viewer")
    async def get(self, name: str) -> None:
        self.write_json(public_host(await self.services.hosts.get(name)))

    @requires("admin")
    async def put(self, name: str) -> None:
        before = public_host(await self.services.hosts.get(name))
        host = await self.services.hosts.update(name, self.get_json_body())
        await self.audit("host.update", name, details={"changes": field_changes(before, host)})
        self.write_json(host)

    @requires("admin")
    async def delete(self, name: str) -> None:
        before = public_host(await self.services.hosts.get(name))
        await self.services.hosts.delete(name)
        await self.audit("host.delete", name, details={"changes": field_changes(before, None)})
        self.set_status(204)
        self.finish()


class HostScanHandler(ApiHandler):
    @requires("admin")
    async def post(self, name: str) -> None:
        scan = await self.services.hosts.scan(name)
        await self.audit("host.scan", name, details={
            "fingerprint": scan["fingerprint"], "key_type": scan["key_type"]})
        self.write_json(scan)


class HostTrustHandler(ApiHandler):
    @requires("admin")
    async def post(self, name: str) -> None:
        fingerprint = self.get_json_body().get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint.startswith("SHA256:"):
            raise UserError(400, "fingerprint (SHA256:…) of the scanned key is required")
        trusted = await self.services.hosts.trust(name, fingerprint)
        await self.audit("host.trust", name, details={"fingerprint": fingerprint})
        self.write_json(trusted)


class HostReleasesHandler(ApiHandler):
    """GET a page of the host's releases (newest first; `before`: the previous page's
    `next`), what `current` points to per project, and its last failures."""

    @requires("viewer")
    async def get(self, name: str) -> None:
        before = self.get_query_argument("before", None)
        cursor = None if before is None else self.query_number("before", before, int, 1,
                                                               2**63 - 1)
        limit = self.query_number("limit", "50", int, 1, 10**6)     # the service caps it
        among = await self.services.access.visible_projects(self.current_user)
        self.write_json(await self.services.history.host_releases(name, cursor, limit, among))
