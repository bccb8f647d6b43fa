"""A page's JavaScript heap, its workers' included, over the Chrome DevTools Protocol.

A page that draws in a worker keeps part of its memory there: a heap read from the page's
main thread alone would flatter it. The page's CDP session auto-attaches to the workers it
starts (from before navigation on), and speaks to each through Target.sendMessageToTarget
(Playwright gives CDP sessions for pages and frames only)."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

REPLY_TIMEOUT_S = 300.0


class PageHeap:
    """The heap sizes (after a forced GC) and snapshots of a page and of its workers."""

    def __init__(self, cdp) -> None:
        self.cdp = cdp
        self.workers: dict[str, str] = {}              # CDP session id -> worker URL
        self._ids = itertools.count(1)
        self._replies: dict[tuple[str, int], asyncio.Future] = {}
        self._chunks: dict[str, list[str]] = {}
        cdp.on("Target.attachedToTarget", self._attached)
        cdp.on("Target.detachedFromTarget", self._detached)
        cdp.on("Target.receivedMessageFromTarget", self._received)

    async def watch_workers(self) -> None:
        """Attach to every worker the page starts; call before navigating."""
        await self.cdp.send("Target.setAutoAttach", {
            "autoAttach": True, "waitForDebuggerOnStart": False, "flatten": False})

    def _attached(self, event: dict) -> None:
        info = event["targetInfo"]
        if info.get("type") == "worker":
            self.workers[event["sessionId"]] = info.get("url", "")

    def _detached(self, event: dict) -> None:
        self.workers.pop(event.get("sessionId", ""), None)

    def _received(self, event: dict) -> None:
        session = event["sessionId"]
        message = json.loads(event["message"])
        if message.get("method") == "HeapProfiler.addHeapSnapshotChunk":
            self._chunks.setdefault(session, []).append(message["params"]["chunk"])
            return
        reply = self._replies.pop((session, message.get("id")), None)
        if reply is None or reply.done():
            return
        if "error" in message:
            reply.set_exception(RuntimeError(f"{session}: {message['error']}"))
        else:
            reply.set_result(message.get("result", {}))

    async def _send(self, session: str | None, method: str, params: dict | None = None) -> dict:
        """A CDP command to the page (session None) or to one of its workers."""
        if session is None:
            return await self.cdp.send(method, params or {})
        number = next(self._ids)
        reply = asyncio.get_running_loop().create_future()
        self._replies[(session, number)] = reply
        await self.cdp.send("Target.sendMessageToTarget", {
            "sessionId": session,
            "message": json.dumps({"id": number, "method": method, "params": params or {}})})
        try:
            return await asyncio.wait_for(reply, REPLY_TIMEOUT_S)
        finally:
            self._replies.pop((session, number), None)

    async def _used_mb(self, session: str | None) -> float:
        await self._send(session, "HeapProfiler.collectGarbage")
        usage = await self._send(session, "Runtime.getHeapUsage")
        return round(usage["usedSize"] / 2**20, 2)

    async def sizes_mb(self) -> dict:
        """{"page", "workers", "total"}: MB in use after a forced GC in each."""
        page = await self._used_mb(None)
        workers = [await self._used_mb(session) for session in list(self.workers)]
        return {"page": page, "workers": round(sum(workers), 2),
                "total": round(page + sum(workers), 2)}

    async def snapshots(self, directory: Path, stem: str) -> list[Path]:
        """The page's heap (and each worker's) as .heapsnapshot files for DevTools."""
        targets = [(None, stem)] + [(session, f"{stem}-worker-{i}")
                                    for i, session in enumerate(self.workers)]
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for session, name in targets:
            path = directory / f"{name}.heapsnapshot"
            path.write_text(await self._snapshot(session))
            written.append(path)
        return written

    async def _snapshot(self, session: str | None) -> str:
        chunks: list[str] = []
        if session is None:
            def add(event: dict) -> None:
                chunks.append(event["chunk"])

            self.cdp.on("HeapProfiler.addHeapSnapshotChunk", add)
            try:
                await self._snapshot_commands(None)
            finally:
                self.cdp.remove_listener("HeapProfiler.addHeapSnapshotChunk", add)
            return "".join(chunks)
        self._chunks[session] = chunks
        try:
            await self._snapshot_commands(session)
        finally:
            self._chunks.pop(session, None)
        return "".join(chunks)

    async def _snapshot_commands(self, session: str | None) -> None:
        await self._send(session, "HeapProfiler.collectGarbage")
        await self._send(session, "HeapProfiler.takeHeapSnapshot", {"reportProgress": False})
