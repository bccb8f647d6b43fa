"""Board: the wall's picture of the fleet, in memory, current to one `wall` seq.

Every host's latest state (its last release's result on it, or running now with the
stage), the releases running now and the last few finished, and the open votes. The
board is changed only by applying `wall` events in seq order (plus the registry's host
names and groups), so `snapshot()` is exactly "everything up to `seq`": a client that
then follows the topic after `seq` misses nothing and sees nothing twice.

`version` counts every change, so a reader can keep what it derived from the board (the
snapshot's encoded bytes, the hosts' name order) until the board changes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from services.registry.hosts import natural_key

ACTIVE = ("pending", "running", "paused")
WAITING = ("scheduled", "awaiting_approval")   # not started: neither running nor finished
HOST_FIELDS = ("name", "groups", "state", "stage", "release_id", "project", "ref", "sha",
               "updated_at")
RELEASE_FIELDS = ("release_id", "project", "environment", "kind", "ref", "sha", "state",
                  "total", "counts", "created_by", "started_at", "finished_at", "duration_ms")


def iso(value: Any) -> Any:
    """Datetimes as ISO 8601 text, as they go out on the wire."""
    return value.isoformat() if isinstance(value, datetime) else value


def wire(value: Any) -> Any:
    """What JSON cannot hold as it is, as the API writes it (handlers/base.py)."""
    if isinstance(value, datetime):
        return value.isoformat()
    return list(value) if isinstance(value, (set, tuple)) else str(value)


def new_host(name: str, groups: list[str]) -> dict:
    return {"name": name, "groups": groups, "state": "none", "stage": None,
            "release_id": None, "project": None, "ref": None, "sha": None,
            "updated_at": None}


class Board:
    """Host tiles, releases and votes; bounded by `max_hosts` and `recent`."""

    def __init__(self, max_hosts: int, recent: int) -> None:
        self.max_hosts = max_hosts
        self.recent = recent
        self.seq = 0
        self.hosts: dict[str, dict] = {}
        self.releases: dict[int, dict] = {}
        self.votes: dict[int, dict] = {}
        self.version = 0
        self._order: list[str] | None = None          # host names, natural order
        self._encoded: tuple[int, bytes] | None = None  # (version, snapshot as JSON)

    # -- loading ------------------------------------------------------------------------

    def set_registry(self, groups_by_host: dict[str, list[str]]) -> None:
        """The registry's hosts and groups; hosts it no longer has leave the board."""
        for name in [name for name in self.hosts if name not in groups_by_host]:
            self.remove_host(name)
        for name, groups in groups_by_host.items():
            self.set_host(name, groups)

    def set_host(self, name: str, groups: list[str]) -> None:
        """A host of the registry, new or with its groups changed."""
        host = self.hosts.get(name)
        if host is not None:
            if host["groups"] != groups:
                host["groups"] = list(groups)
                self.version += 1
        elif len(self.hosts) < self.max_hosts:
            self.hosts[name] = new_host(name, list(groups))
            self._order = None
            self.version += 1

    def remove_host(self, name: str) -> None:
        """A host the registry no longer has."""
        if self.hosts.pop(name, None) is not None:
            self._order = None
            self.version += 1

    def load_run(self, run: dict, release: dict) -> None:
        """A host run read from the database at start-up: the newest release's wins."""
        host = self.hosts.get(run["host"])
        if host is None or (host["release_id"] or 0) > release["_id"]:
            return
        host.update(state=run["state"], stage=run.get("stage"), release_id=release["_id"],
                    project=release.get("project"), ref=release.get("ref"),
                    sha=release.get("sha"),
                    updated_at=iso(run.get("finished_at") or run.get("started_at")))
        self.version += 1

    def load_release(self, doc: dict) -> None:
        self.version += 1
        self._release({"release_id": doc["_id"],
                       "total": len(doc.get("hosts") or []) or sum(
                           (doc.get("counts") or {}).values()),
                       **{k: doc.get(k) for k in RELEASE_FIELDS
                          if k not in ("release_id", "total")}})

    # -- events ---------------------------------------------------------------------------

    def apply(self, event: dict) -> None:
        """One `wall` event, in seq order."""
        self.seq = max(self.seq, event["seq"])
        self.version += 1
        data = event.get("data")
        if not isinstance(data, dict):
            return
        if event["type"] == "release" and isinstance(data.get("release_id"), int):
            self._release(data)
            self._hosts(data, event.get("ts"))
        elif event["type"] == "vote" and isinstance(data.get("release_id"), int):
            release = self.releases.get(data["release_id"]) or {}
            # A vote is open only while its release is paused: word of it that arrives
            # after the release went on or ended (the relay read it just before) is stale.
            if data.get("state") == "open" and release.get("state") == "paused":
                self.votes[data["release_id"]] = dict(data)
            else:
                self.votes.pop(data["release_id"], None)

    def _release(self, data: dict) -> None:
        if data.get("state") in WAITING:
            self.releases.pop(data["release_id"], None)
            return
        summary = {key: iso(data.get(key)) for key in RELEASE_FIELDS}
        self.releases[summary["release_id"]] = summary
        if summary["state"] not in ACTIVE:
            self.votes.pop(summary["release_id"], None)
        finished = sorted((r for r in self.releases.values() if r["state"] not in ACTIVE),
                          key=lambda r: r["release_id"], reverse=True)
        for old in finished[self.recent:]:
            del self.releases[old["release_id"]]

    def _hosts(self, data: dict, ts: float | None) -> None:
        changes = data.get("hosts")
        if not isinstance(changes, dict):
            return
        stamp = datetime.fromtimestamp(ts, UTC).isoformat() if ts else None
        for name, change in changes.items():
            host = self.hosts.get(name)
            if host is None:
                if len(self.hosts) >= self.max_hosts or not isinstance(name, str):
                    continue
                host = self.hosts[name] = new_host(name, [])
                self._order = None
            state, stage = [*change, None, None][:2] if isinstance(change, list) else (
                None, None)
            host.update(state=state, stage=stage, release_id=data["release_id"],
                        project=data.get("project"), ref=data.get("ref"),
                        sha=data.get("sha"), updated_at=stamp)

    # -- reading ----------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """Every host (natural name order), running and recent releases, open votes, seq."""
        if self._order is None:
            self._order = sorted(self.hosts, key=natural_key)
        hosts = [dict(self.hosts[name]) for name in self._order]
        releases = sorted(self.releases.values(), key=lambda r: r["release_id"], reverse=True)
        return {"hosts": hosts, "releases": [dict(r) for r in releases],
                "votes": [dict(v) for v in self.votes.values()], "seq": self.seq}

    def snapshot_json(self) -> bytes:
        """`snapshot()` encoded as JSON, encoded once per version of the board: screens
        opened together (an office's TVs after a restart) share one encoding."""
        if self._encoded is None or self._encoded[0] != self.version:
            text = json.dumps(self.snapshot(), default=wire, separators=(",", ":"))
            self._encoded = (self.version, text.encode())
        return self._encoded[1]
