"""Notifications out: a project's channels (generic webhook, Slack, DingTalk, WeCom,
Feishu/Lark), what releases tell them, and the log of each delivery.

Owns `notify_channels` and `notify_deliveries` (kept `notify_log_ttl_s`). Release news comes
from the events this server publishes on the wall topic (an observer: the release engine
knows nothing of notifications) and goes through a bounded dispatch queue to one worker per
channel (sender.py), so a slow, failing or rate-limited channel never delays or fails a
release: the worst it can do is drop its own messages, with a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import DESCENDING

from services.errors import Invalid, NotFound
from services.events.bus import EventBus
from services.notify import channels
from services.notify.sender import ChannelWorker, http_client
from services.outbound import AddressPolicy
from services.registry import validation as check
from services.settings import Settings
from services.store import Store, utcnow

log = logging.getLogger("ferry.notify")
EVENT_OF_STATE = {"running": "release.started", "awaiting_approval": "release.awaiting_approval",
                  "paused": "release.paused", "succeeded": "release.succeeded",
                  "failed": "release.failed", "cancelled": "release.cancelled",
                  "rolled_back": "release.rolled_back"}
FIELDS = {"name", "kind", "url", "secret", "events", "rate_per_min", "enabled"}


class NotificationService:
    def __init__(self, settings: Settings, store: Store, events: EventBus) -> None:
        self.settings = settings
        self.channels = store.db.notify_channels
        self.deliveries = store.db.notify_deliveries
        # The outbound policy of git remotes, with its own switch for private addresses.
        self.policy = AddressPolicy(settings.notify_allow_private,
                                    AddressPolicy.from_settings(settings).allow_networks,
                                    settings.outbound_resolve_timeout_s)
        self._dispatch: asyncio.Queue[dict] | None = None
        self._workers: dict[str, ChannelWorker] = {}
        self._told: dict[int, str] = {}
        self._task: asyncio.Task | None = None
        self._client = None
        events.observe(self._observe)

    async def open(self) -> None:
        await self.channels.create_index("project")
        await self.deliveries.create_index([("channel", 1), ("_id", DESCENDING)])
        await self.deliveries.create_index("ts", expireAfterSeconds=self.settings.notify_log_ttl_s)
        self._client = http_client(self.policy)
        self._dispatch = asyncio.Queue(self.settings.notify_dispatch_max)
        self._task = asyncio.get_running_loop().create_task(self._dispatch_loop(),
                                                            name="notify dispatch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for worker in self._workers.values():
            await worker.close()
        self._workers.clear()
        if self._client is not None:
            self._client.close()

    # -- channels (maintainers) ------------------------------------------------------------

    async def list(self, project: str) -> list[dict]:
        return [_public(doc) async for doc in self.channels.find({"project": project})]

    async def create(self, project: str, body: dict) -> dict:
        count = await self.channels.count_documents({"project": project})
        if count >= self.settings.notify_channels_max:
            raise Invalid(f"a project has at most {self.settings.notify_channels_max} channels")
        doc = await self._validate(body, {})
        doc.update(project=project, created_at=utcnow())
        await self.channels.insert_one(doc)
        return _public(doc)

    async def update(self, project: str, channel_id: str, body: dict) -> dict:
        current = await self._get(project, channel_id)
        changes = await self._validate(body, current)
        await self.channels.update_one({"_id": current["_id"]}, {"$set": changes})
        await self._forget_worker(str(current["_id"]))
        return _public({**current, **changes})

    async def delete(self, project: str, channel_id: str) -> None:
        current = await self._get(project, channel_id)
        await self.channels.delete_one({"_id": current["_id"]})
        await self._forget_worker(str(current["_id"]))

    async def send_test(self, project: str, channel_id: str) -> dict:
        """Queue a test message; its outcome appears in the channel's delivery log."""
        channel = await self._get(project, channel_id)
        queued = self._worker(channel).offer({"event": "test", "project": project,
                                              "ts": utcnow().isoformat()})
        return {"queued": queued}

    async def delivery_log(self, project: str, channel_id: str, limit: int) -> list[dict]:
        channel = await self._get(project, channel_id)
        cursor = self.deliveries.find({"channel": str(channel["_id"])}).sort(
            "_id", DESCENDING).limit(limit)
        return [{**{k: v for k, v in doc.items() if k != "_id"}, "id": str(doc["_id"])}
                async for doc in cursor]

    async def _get(self, project: str, channel_id: str) -> dict:
        try:
            key = ObjectId(channel_id)
        except (InvalidId, TypeError):
            raise NotFound(f"no channel {channel_id!r}") from None
        doc = await self.channels.find_one({"_id": key, "project": project})
        if doc is None:
            raise NotFound(f"no channel {channel_id!r}")
        return doc

    async def _validate(self, body: dict, current: dict) -> dict:
        unknown = set(body) - FIELDS
        if unknown:
            raise Invalid(f"unknown channel field(s): {', '.join(sorted(unknown))}")
        doc: dict[str, Any] = {}
        kind = body.get("kind", current.get("kind"))
        if kind not in channels.KINDS:
            raise Invalid(f"kind must be one of {', '.join(channels.KINDS)}")
        doc["kind"] = kind
        if "name" in body or not current:
            doc["name"] = check.text(body.get("name", kind), "name", 100, line=True)
        if "url" in body or not current:
            doc["url"] = await self._check_url(body.get("url"))
        if "secret" in body:
            secret = body["secret"]
            doc["secret"] = None if secret in (None, "") else check.text(secret, "secret", 256,
                                                                          line=True)
        if "events" in body or not current:
            events = body.get("events", [e for e in channels.EVENTS if e != "test"])
            if not isinstance(events, list) or any(e not in channels.EVENTS for e in events):
                raise Invalid("events must be a list of: " + ", ".join(channels.EVENTS[:-1]))
            doc["events"] = list(dict.fromkeys(events))
        if "rate_per_min" in body or not current:
            doc["rate_per_min"] = check.integer(
                body.get("rate_per_min", channels.DEFAULT_RATE_PER_MIN[kind]), "rate_per_min",
                1, 600)
        if "enabled" in body or not current:
            doc["enabled"] = check.boolean(body.get("enabled", True), "enabled")
        return doc

    async def _check_url(self, url: Any) -> str:
        url = check.text(url, "url", 2048, line=True)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise Invalid("url must be an http(s) URL")
        if parts.username or parts.password:
            raise Invalid("url must not carry a user or password")
        await self.policy.resolve(parts.hostname, parts.port or 443)   # OutboundRefused: 400
        return url

    # -- dispatch ----------------------------------------------------------------------------

    def _observe(self, event: dict) -> None:
        """A bus observer: quick, never raises, never waits."""
        if event.get("topic") != "wall" or event.get("type") != "release" or \
                self._dispatch is None:
            return
        data = event.get("data") or {}
        name, release_id = EVENT_OF_STATE.get(data.get("state")), data.get("release_id")
        if name is None or self._told.get(release_id) == name:
            return
        self._told[release_id] = name
        if len(self._told) > 10_000:
            for key in list(self._told)[:5_000]:
                del self._told[key]
        with contextlib.suppress(asyncio.QueueFull):
            self._dispatch.put_nowait({"event": name, "release": data})

    async def _dispatch_loop(self) -> None:
        while True:
            item = await self._dispatch.get()
            try:
                await self._fan_out(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not dispatch a release notification")

    async def _fan_out(self, item: dict) -> None:
        release = item["release"]
        notification = {"event": item["event"], "project": release.get("project"),
                        "release": {"id": release.get("release_id"), **{
                            k: release.get(k) for k in (
                                "project", "environment", "ref", "sha", "state", "counts",
                                "total", "created_by", "duration_ms")}},
                        "ts": utcnow().isoformat()}
        if self.settings.public_url:
            notification["link"] = (f"{self.settings.public_url.rstrip('/')}/releases/"
                                    f"{release.get('release_id')}")
        async for channel in self.channels.find({"project": release.get("project"),
                                                 "enabled": True, "events": item["event"]}):
            self._worker(channel).offer(notification)

    def _worker(self, channel: dict) -> ChannelWorker:
        key = str(channel["_id"])
        worker = self._workers.get(key)
        if worker is None:
            worker = self._workers[key] = ChannelWorker(self.settings, channel, self._client,
                                                        self._record)
        return worker

    async def _forget_worker(self, key: str) -> None:
        worker = self._workers.pop(key, None)
        if worker is not None:
            await worker.close()

    async def _record(self, channel: dict, outcome: dict) -> None:
        try:
            await self.deliveries.insert_one({"channel": str(channel["_id"]),
                                              "project": channel["project"], "ts": utcnow(),
                                              **outcome})
        except Exception as error:     # the log is for people; the delivery already happened
            log.warning("could not log a delivery on channel %s: %s", channel["_id"], error)


def _public(doc: dict) -> dict:
    result = {k: v for k, v in doc.items() if k not in ("_id", "secret")}
    result["id"] = str(doc["_id"])
    result["secret_set"] = bool(doc.get("secret"))
    return result
