"""What the wall bench watches of Ferry's own process while the page is served: how late
its event loop runs, and how long Ferry's steps of the page's first requests took."""

from __future__ import annotations

import asyncio
import time

from services import Services


class LoopLag:
    """How late this process's event loop (Ferry's, the release's) wakes a 10 ms sleep:
    the wait any request of the page's has before Ferry's code even starts."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []     # (monotonic, lag ms)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            now = time.monotonic()
            self.samples.append((now, (now - before - 0.01) * 1000))
            if len(self.samples) > 200_000:
                del self.samples[:100_000]

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def summary(self, start: float, end: float) -> dict:
        lags = sorted(lag for at, lag in self.samples if start <= at <= end)
        if not lags:
            return {}
        return {"max": round(lags[-1]), "p50": round(lags[len(lags) // 2]),
                "p90": round(lags[int(len(lags) * 0.9)]), "samples": len(lags)}


class ServerSteps:
    """How long Ferry's own steps of the page's first requests took, as Ferry saw them
    (wrapped here, for the bench only): the link's look-up, its use recorded, the
    snapshot's encoding. What the request waited beyond them is the event loop's lag."""

    STEPS = (("links", "resolve"), ("links", "touch"), ("audit", "record_every"),
             ("wall", "snapshot_json"))

    def __init__(self, services: Services) -> None:
        self.started = time.monotonic()
        self.steps: list[list] = []
        for owner, name in self.STEPS:
            target = {"links": services.wall.links, "audit": services.audit,
                      "wall": services.wall}[owner]
            setattr(target, name, self._timed(f"{owner}.{name}", getattr(target, name)))

    def _timed(self, label: str, method):
        async def timed(*args, **kwargs):
            start = time.monotonic()
            try:
                return await method(*args, **kwargs)
            finally:
                if len(self.steps) < 40:
                    self.steps.append([label, round((start - self.started) * 1000),
                                       round((time.monotonic() - start) * 1000)])
        return timed
