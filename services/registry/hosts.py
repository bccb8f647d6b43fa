"""The host registry: addresses, users, keys, groups, variables, and trusted host keys."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.errors import Conflict, Invalid, NotFound
from services.registry import inventory
from services.registry import validation as check
from services.settings import Settings
from services.ssh.client import SshError, SshService, parse_jump_host
from services.store import Store, utcnow

DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> list:
    """host-2 before host-10."""
    return [int(part) if part.isdigit() else part for part in DIGITS.split(name)]


# Whole-string patterns: used only through check.matches (re.fullmatch).
HOST_NAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
                       r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?")
USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
JUMP = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}@[A-Za-z0-9][A-Za-z0-9.:-]{0,252}(:\d{1,5})?")
FIELDS = ("name", "address", "port", "user", "key_path", "groups", "variables", "jump_host")
# Told `(name, groups)` after a host is created or changed here, `(name, None)` after it is
# deleted: what keeps an in-memory view of the registry (the wall's) current.
HostWatcher = Callable[[str, list[str] | None], None]


def valid_address(value: Any) -> bool:
    """An IPv4 or IPv6 address (no zone id) or a DNS host name; nothing else."""
    if not isinstance(value, str) or "%" in value:
        return False
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    # Dotted digits that are no IPv4 address (10.0.0.256) are a typo, not a host name.
    return check.matches(HOST_NAME, value) and not check.matches(r"[\d.]+", value)


def valid_jump_host(value: Any) -> bool:
    """user@address[:port], each part as valid as a host's own."""
    if not check.matches(JUMP, value):
        return False
    try:
        user, address, port = parse_jump_host(value)
    except ValueError:
        return False
    return (user is not None and check.matches(USER, user) and valid_address(address)
            and 0 < port < 65536)


def public_host(doc: dict) -> dict:
    """A host as the API shows it (no database internals)."""
    return {key: doc.get(key) for key in (*FIELDS, "host_key_fingerprint", "created_at",
                                          "updated_at", "last_release")}


class HostService:
    """Validates and stores hosts; scans and trusts their SSH host keys."""

    def __init__(self, settings: Settings, store: Store, ssh: SshService,
                 executor: Executor | None = None) -> None:
        self.settings = settings
        self.store = store
        self.ssh = ssh
        self.executor = executor      # parses inventories (YAML is slow on big files)
        self._watchers: list[HostWatcher] = []

    def watch(self, watcher: HostWatcher) -> None:
        """Tell `watcher` of every host this instance creates, changes or deletes."""
        self._watchers.append(watcher)

    def _tell(self, name: str, groups: list[str] | None) -> None:
        for watcher in self._watchers:
            watcher(name, groups)

    def validate(self, body: dict, *, partial: bool = False) -> dict:
        unknown = set(body) - set(FIELDS)
        if unknown:
            raise Invalid(f"unknown host field(s): {', '.join(sorted(unknown))}")
        doc: dict[str, Any] = {}
        if "name" in body or not partial:
            doc["name"] = check.name(body.get("name"), "host name")
        if "address" in body or not partial:
            address = body.get("address")
            if not valid_address(address):
                raise Invalid("address must be a host name or an IPv4 or IPv6 address "
                              "(without brackets, port or %zone)")
            doc["address"] = address
        if "port" in body or not partial:
            doc["port"] = check.integer(body.get("port", 22), "port", 1, 65535)
        if "user" in body or not partial:
            user = body.get("user", "deploy")
            if not check.matches(USER, user):
                raise Invalid("user must be a valid Unix user name")
            doc["user"] = user
        if "key_path" in body or not partial:
            key_path = body.get("key_path")
            if key_path is not None:
                key_path = check.text(key_path, "key_path", 1024, line=True)
                if not key_path.startswith("/"):
                    raise Invalid("key_path must be an absolute path on the Ferry server")
            doc["key_path"] = key_path
        if "groups" in body or not partial:
            doc["groups"] = check.name_list(body.get("groups", []), "groups")
        if "variables" in body or not partial:
            doc["variables"] = check.variables(body.get("variables", {}))
        if "jump_host" in body or not partial:
            jump = body.get("jump_host")
            if jump is not None and not valid_jump_host(jump):
                raise Invalid("jump_host must look like user@address[:port] (a valid user, "
                              "address and port from 1 to 65535)")
            doc["jump_host"] = jump
        return doc

    async def create(self, body: dict) -> dict:
        doc = self.validate(body)
        doc["created_at"] = doc["updated_at"] = utcnow()
        try:
            await self.store.hosts.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(f"a host named {doc['name']!r} already exists") from None
        self._tell(doc["name"], doc["groups"])
        return public_host(doc)

    async def create_many(self, bodies: list[dict]) -> list[dict]:
        """Validate every host first, so a bad one adds none of them. Errors name a host
        by its place in the list and its name ("host 3 (web-3)")."""
        if not isinstance(bodies, list) or len(bodies) > self.settings.max_hosts_per_release:
            raise Invalid(f"hosts must be a list of at most {self.settings.max_hosts_per_release}")
        docs = []
        for number, body in enumerate(bodies, 1):
            try:
                if not isinstance(body, dict):
                    raise Invalid("must be an object with name, address, port, user, groups")
                docs.append(self.validate(body))
            except Invalid as error:
                raise Invalid(f"{_which(number, body)}: {error}") from None
        names = [doc["name"] for doc in docs]
        repeated = sorted((name for name, n in Counter(names).items() if n > 1), key=natural_key)
        if repeated:
            raise Invalid(f"host names repeat within the list: {', '.join(repeated)}")
        existing = sorted([doc["name"] async for doc in self.store.hosts.find(
            {"name": {"$in": names}}, {"name": 1})], key=natural_key)
        if existing:
            raise Conflict(f"these host names already exist: {', '.join(existing)}")
        now = utcnow()
        for doc in docs:
            doc["created_at"] = doc["updated_at"] = now
        if docs:
            try:
                await self.store.hosts.insert_many(docs)
            except BulkWriteError:
                # Added by someone else meanwhile: take back ours, so it stays all or none.
                await self.store.hosts.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
                raise Conflict("some of these host names were added meanwhile; "
                               "nothing was imported") from None
        for doc in docs:
            self._tell(doc["name"], doc["groups"])
        return [public_host(doc) for doc in docs]

    async def import_inventory(self, text: str, fmt: str = "auto") -> dict:
        """Hosts from an Ansible inventory (INI or YAML), all or none: see inventory.py.
        Answers {"hosts": [...created], "ignored": [ansible_* names Ferry does not use]}."""
        if not isinstance(text, str) or not text.strip():
            raise Invalid("inventory must be the text of an Ansible inventory (INI or YAML)")
        if len(text) > self.settings.inventory_max_chars:
            raise Invalid(f"inventory must be at most {self.settings.inventory_max_chars} "
                          "characters")
        loop = asyncio.get_running_loop()
        bodies, ignored = await loop.run_in_executor(
            self.executor, inventory.parse, text, fmt, self.settings.max_hosts_per_release)
        return {"hosts": await self.create_many(bodies), "ignored": ignored}

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
        """A new address or port is another machine as far as SSH knows: its trust is
        cleared and the host must be scanned and confirmed again."""
        changes = self.validate(body, partial=True)
        if changes.get("name", name) != name:
            raise Invalid("a host cannot be renamed; create a new one")
        old = await self.get(name)
        moved = any(key in changes and changes[key] != old.get(key)
                    for key in ("address", "port"))
        changes["updated_at"] = utcnow()
        update: dict[str, Any] = {"$set": changes}
        if moved:
            update["$unset"] = {"host_key_fingerprint": ""}
        doc = await self.store.hosts.find_one_and_update(
            {"name": name, "address": old["address"], "port": old.get("port")}, update,
            return_document=True)
        if doc is None:
            raise Conflict(f"host {name!r} was changed or deleted meanwhile; try again")
        self._tell(name, doc.get("groups") or [])
        if moved:
            await self._forget_unused(old["address"], old.get("port") or 22)
            await self._forget_unused(doc["address"], doc["port"])
        return public_host(doc)

    async def delete(self, name: str) -> None:
        doc = await self.store.hosts.find_one_and_delete({"name": name})
        if doc is None:
            raise NotFound(f"no host named {name!r}")
        self._tell(name, None)
        await self._forget_unused(doc["address"], doc.get("port") or 22)

    async def _forget_unused(self, address: str, port: int) -> None:
        """Drop the known_hosts entry of address:port unless a host there still uses it."""
        if await self.store.hosts.count_documents({"address": address, "port": port},
                                                  limit=1):
            return
        # An address known_hosts cannot hold (older data) has no entry to forget.
        with contextlib.suppress(SshError):
            await self.ssh.forget_host_key(address, port)

    async def record_results(self, release: dict, runs: list[dict]) -> None:
        """Each host's `last_release`: the last release that ran on it and how it went
        there. Hosts it never reached (skipped, cancelled before starting) keep theirs."""
        summary = {"id": release["_id"], "project": release["project"],
                   "kind": release["kind"], "ref": release["ref"],
                   "release_state": release["state"]}
        updates = [UpdateOne({"name": run["host"]}, {"$set": {"last_release": {
            **summary, "state": run["state"], "finished_at": run.get("finished_at")}}})
            for run in runs if run.get("started_at") is not None]
        if updates:
            await self.store.hosts.bulk_write(updates, ordered=False)

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
        # Only if the host still has the address and port whose key was confirmed.
        result = await self.store.hosts.update_one(
            {"name": name, "address": host["address"], "port": host.get("port")},
            {"$set": {"host_key_fingerprint": key.fingerprint, "updated_at": utcnow()}})
        if not result.matched_count:
            await self._forget_unused(host["address"], host.get("port") or 22)
            raise Conflict(f"{name} was changed or deleted meanwhile; scan it again")
        return {"host": name, "fingerprint": key.fingerprint, "trusted": True}


def _which(number: int, body: Any) -> str:
    """"host 3 (web-3)": a host of an imported list, by place and by name."""
    name = body.get("name") if isinstance(body, dict) else None
    return f"host {number} ({name[:64]})" if isinstance(name, str) and name else f"host {number}"
