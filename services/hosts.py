"""The host registry: addresses, users, keys, groups, variables, and trusted host keys."""

from __future__ import annotations

import re
from typing import Any

from pymongo.errors import DuplicateKeyError

from services import validation as check
from services.errors import Conflict, Invalid, NotFound
from services.settings import Settings
from services.ssh import SshError, SshService
from services.store import Store, utcnow

DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> list:
    """host-2 before host-10."""
    return [int(part) if part.isdigit() else part for part in DIGITS.split(name)]


ADDRESS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:%-]{0,252}$")
USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
JUMP = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}@[A-Za-z0-9][A-Za-z0-9.:-]{0,252}(:\d{1,5})?$")
FIELDS = ("name", "address", "port", "user", "key_path", "groups", "variables", "jump_host")


def public_host(doc: dict) -> dict:
    """A host as the API shows it (no database internals)."""
    return {key: doc.get(key) for key in (*FIELDS, "host_key_fingerprint", "created_at",
                                          "updated_at", "last_release")}


class HostService:
    """Validates and stores hosts; scans and trusts their SSH host keys."""

    def __init__(self, settings: Settings, store: Store, ssh: SshService) -> None:
        self.settings = settings
        self.store = store
        self.ssh = ssh

    def validate(self, body: dict, *, partial: bool = False) -> dict:
        unknown = set(body) - set(FIELDS)
        if unknown:
            raise Invalid(f"unknown host field(s): {', '.join(sorted(unknown))}")
        doc: dict[str, Any] = {}
        if "name" in body or not partial:
            doc["name"] = check.name(body.get("name"), "host name")
        if "address" in body or not partial:
            address = body.get("address")
            if not isinstance(address, str) or not ADDRESS.match(address):
                raise Invalid("address must be a host name or IP address")
            doc["address"] = address
        if "port" in body or not partial:
            doc["port"] = check.integer(body.get("port", 22), "port", 1, 65535)
        if "user" in body or not partial:
            user = body.get("user", "deploy")
            if not isinstance(user, str) or not USER.match(user):
                raise Invalid("user must be a valid Unix user name")
            doc["user"] = user
        if "key_path" in body or not partial:
            key_path = body.get("key_path")
            if key_path is not None:
                key_path = check.text(key_path, "key_path", 1024)
                if not key_path.startswith("/"):
                    raise Invalid("key_path must be an absolute path on the Ferry server")
            doc["key_path"] = key_path
        if "groups" in body or not partial:
            doc["groups"] = check.name_list(body.get("groups", []), "groups")
        if "variables" in body or not partial:
            doc["variables"] = check.variables(body.get("variables", {}))
        if "jump_host" in body or not partial:
            jump = body.get("jump_host")
            if jump is not None and (not isinstance(jump, str) or not JUMP.match(jump)):
                raise Invalid("jump_host must look like user@address[:port]")
            doc["jump_host"] = jump
        return doc

    async def create(self, body: dict) -> dict:
        doc = self.validate(body)
        doc["created_at"] = doc["updated_at"] = utcnow()
        try:
            await self.store.hosts.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(f"a host named {doc['name']!r} already exists") from None
        return public_host(doc)

    async def create_many(self, bodies: list[dict]) -> list[dict]:
        """Validate every host first, so a bad line adds none of them."""
        if not isinstance(bodies, list) or len(bodies) > self.settings.max_hosts_per_release:
            raise Invalid(f"hosts must be a list of at most {self.settings.max_hosts_per_release}")
        docs = []
        for index, body in enumerate(bodies):
            try:
                docs.append(self.validate(body))
            except Invalid as error:
                raise Invalid(f"host {index + 1}: {error}") from None
        names = [doc["name"] for doc in docs]
        if len(set(names)) != len(names):
            raise Invalid("host names repeat within the list")
        if await self.store.hosts.count_documents({"name": {"$in": names}}):
            raise Conflict("some of these host names already exist")
        now = utcnow()
        for doc in docs:
            doc["created_at"] = doc["updated_at"] = now
        if docs:
            await self.store.hosts.insert_many(docs)
        return [public_host(doc) for doc in docs]

    async def get(self, name: str) -> dict:
        doc = await self.store.hosts.find_one({"name": name})
        if doc is None:
            raise NotFound(f"no host named {name!r}")
        return doc

    async def list(self, group: str | None = None) -> list[dict]:
        query = {"groups": group} if group else {}
        hosts = [public_host(doc) async for doc in self.store.hosts.find(query)]
        return sorted(hosts, key=lambda host: natural_key(host["name"]))

    async def update(self, name: str, body: dict) -> dict:
        changes = self.validate(body, partial=True)
        if changes.get("name", name) != name:
            raise Invalid("a host cannot be renamed; create a new one")
        changes["updated_at"] = utcnow()
        doc = await self.store.hosts.find_one_and_update(
            {"name": name}, {"$set": changes}, return_document=True)
        if doc is None:
            raise NotFound(f"no host named {name!r}")
        return public_host(doc)

    async def delete(self, name: str) -> None:
        result = await self.store.hosts.delete_one({"name": name})
        if not result.deleted_count:
            raise NotFound(f"no host named {name!r}")

    async def select(self, names: list[str] | None, groups: list[str] | None) -> list[dict]:
        """The hosts named or in any of the groups, in name order; unknown names are an error."""
        names = check.name_list(names or [], "hosts", self.settings.max_hosts_per_release)
        groups = check.name_list(groups or [], "groups")
        if not names and not groups:
            raise Invalid("choose hosts or groups to deploy to")
        query = {"$or": [{"name": {"$in": names}}, {"groups": {"$in": groups}}]}
        hosts = sorted([doc async for doc in self.store.hosts.find(query)],
                       key=lambda host: natural_key(host["name"]))
        missing = set(names) - {doc["name"] for doc in hosts}
        if missing:
            raise Invalid(f"unknown host(s): {', '.join(sorted(missing))}")
        if not hosts:
            raise Invalid("no host is in the chosen groups")
        if len(hosts) > self.settings.max_hosts_per_release:
            raise Invalid(f"at most {self.settings.max_hosts_per_release} hosts per release")
        return hosts

    async def scan(self, name: str) -> dict:
        """Fetch the host's SSH key for a user to confirm; nothing is trusted yet."""
        host = await self.get(name)
        try:
            key = await self.ssh.scan_host_key(host["address"], host.get("port", 22))
        except SshError as error:
            raise Invalid(f"key scan of {name} failed: {error.reason}") from None
        return {"host": name, "address": key.address, "port": key.port,
                "key_type": key.key_type, "fingerprint": key.fingerprint}

    async def trust(self, name: str, fingerprint: str) -> dict:
        """Trust the key the host offers now, only if it is the one the user confirmed."""
        host = await self.get(name)
        try:
            key = await self.ssh.scan_host_key(host["address"], host.get("port", 22))
        except SshError as error:
            raise Invalid(f"key scan of {name} failed: {error.reason}") from None
        if key.fingerprint != fingerprint:
            raise Conflict(f"{name} now offers {key.fingerprint}, not the confirmed "
                           f"{fingerprint}; scan again")
        await self.ssh.trust_host_key(key.address, key.port, key.public_key)
        await self.store.hosts.update_one(
            {"name": name}, {"$set": {"host_key_fingerprint": key.fingerprint,
                                      "updated_at": utcnow()}})
        return {"host": name, "fingerprint": key.fingerprint, "trusted": True}
