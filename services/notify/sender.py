"""Delivering notifications for one channel: a bounded queue, the provider's rate limit
(a sliding minute), retries with back-off, and HTTP that connects only to addresses the
outbound policy allowed (checked on every connection) and never follows a redirect."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.httpclient
import tornado.netutil
import tornado.simple_httpclient

from services.notify import channels
from services.outbound import AddressPolicy, OutboundRefused
from services.settings import Settings

log = logging.getLogger("ferry.notify")
Record = Callable[[dict, dict], Awaitable[None]]


class CheckedResolver(tornado.netutil.Resolver):
    """Resolves through the outbound policy: the client connects to the checked address."""

    def initialize(self, policy: AddressPolicy) -> None:
        self.policy = policy

    async def resolve(self, host: str, port: int, family: Any = 0) -> list:
        import socket

        addresses = await self.policy.resolve(host, port)
        if not addresses:
            raise OSError(f"{host} does not resolve")
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, (address, port))
                for address in addresses]


def http_client(policy: AddressPolicy) -> tornado.simple_httpclient.SimpleAsyncHTTPClient:
    return tornado.simple_httpclient.SimpleAsyncHTTPClient(
        force_instance=True, resolver=CheckedResolver(policy=policy), max_clients=4,
        max_body_size=64 * 1024)


class ChannelWorker:
    """One channel's queue and its single sender (messages go out in order)."""

    def __init__(self, settings: Settings, channel: dict,
                 client: tornado.simple_httpclient.SimpleAsyncHTTPClient,
                 record: Record) -> None:
        self.settings = settings
        self.channel = channel
        self.client = client
        self.record = record
        self.queue: asyncio.Queue[dict] = asyncio.Queue(settings.notify_queue_max)
        self.sent_at: collections.deque[float] = collections.deque()
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name=f"notify {channel['_id']}")

    def offer(self, notification: dict) -> bool:
        """Queue without waiting; False (and a log line) when the queue is full."""
        try:
            self.queue.put_nowait(notification)
            return True
        except asyncio.QueueFull:
            log.warning("notification channel %s is full; dropped %s of release %s",
                        self.channel["_id"], notification["event"],
                        (notification.get("release") or {}).get("id"))
            return False

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            notification = await self.queue.get()
            try:
                await self._wait_for_rate()
                await self._deliver(notification)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification channel %s: unexpected error",
                              self.channel["_id"])

    async def _wait_for_rate(self) -> None:
        """At most rate_per_min sends in any 60 s window."""
        rate = self.channel["rate_per_min"]
        while len(self.sent_at) >= rate:
            wait = self.sent_at[0] + 60 - time.monotonic()
            if wait <= 0:
                self.sent_at.popleft()
            else:
                await asyncio.sleep(wait)

    async def _deliver(self, notification: dict) -> None:
        settings, delivery = self.settings, uuid.uuid4().hex
        attempt, delay, outcome = 0, settings.notify_backoff_s, {}
        while attempt < settings.notify_max_attempts:
            attempt += 1
            self.sent_at.append(time.monotonic())
            outcome = await self._send_once(notification, delivery)
            if outcome["status"] == "sent" or not outcome.pop("retry", False):
                break
            if attempt < settings.notify_max_attempts:
                await asyncio.sleep(outcome.pop("retry_after", None) or delay)
                delay = min(delay * 2, settings.notify_backoff_max_s)
                await self._wait_for_rate()
        outcome.pop("retry_after", None)
        await self.record(self.channel, {**outcome, "attempts": attempt, "delivery": delivery,
                                         "event": notification["event"],
                                         "release_id": (notification.get("release") or {})
                                         .get("id")})

    async def _send_once(self, notification: dict, delivery: str) -> dict:
        channel = self.channel
        request = channels.build(channel["kind"], channel["url"], channel.get("secret"),
                                 notification, now_s=time.time(), delivery=delivery)
        try:
            response = await self.client.fetch(
                request.url, method="POST", body=request.body, headers=request.headers,
                follow_redirects=False, raise_error=False,
                connect_timeout=self.settings.notify_timeout_s,
                request_timeout=self.settings.notify_timeout_s)
        except OutboundRefused as refused:
            return {"status": "failed", "error": str(refused)}
        except (OSError, tornado.httpclient.HTTPError) as error:
            return {"status": "failed", "error": str(error)[:300], "retry": True}
        if response.code == 599:
            return {"status": "failed", "error": str(response.error)[:300], "retry": True}
        if 200 <= response.code < 300:
            return {"status": "sent", "code": response.code}
        failed = {"status": "failed", "code": response.code,
                  "error": f"HTTP {response.code}" + (" (redirects are not followed)"
                                                      if 300 <= response.code < 400 else "")}
        if response.code == 429 or response.code >= 500:
            failed["retry"] = True
            after = response.headers.get("Retry-After", "")
            if after.isdigit():
                failed["retry_after"] = min(int(after), self.settings.notify_backoff_max_s)
        return failed
