"""Metrics: Ferry's figures in Prometheus' format, through prometheus_client.

Owns one CollectorRegistry per Services (never the library's global one, so two servers in
one process — the tests — do not share counters). Release figures come from the events the
bus publishes (an observer, so the release engine knows nothing of metrics); the bus's and
SSH's live figures are read at scrape time. No label carries a host name or any other
unbounded value: projects are the only free label, and they are admin-created.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.events.bus import EventBus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Deploy stages take from well under a second (a symlink switch) to tens of minutes (a build).
STAGE_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
FINAL_RELEASE_STATES = frozenset({"succeeded", "failed", "cancelled", "rolled_back",
                                  "interrupted", "rejected", "expired"})
FINAL_HOST_STATES = frozenset({"ok", "failed", "skipped", "cancelled", "interrupted"})


class _LiveFigures(Collector):
    """Reads the bus's and SSH's running figures when Prometheus scrapes."""

    def __init__(self, bus: EventBus, ssh_failures: Callable[[], dict[str, int]]) -> None:
        self.bus = bus
        self.ssh_failures = ssh_failures

    def collect(self) -> Iterable[Metric]:
        stats, counters = self.bus.stats(), self.bus.counters
        yield GaugeMetricFamily("ferry_event_subscribers",
                                "Live event-stream connections (WebSocket).",
                                value=stats["subscribers"])
        yield GaugeMetricFamily("ferry_event_longpoll_waiters",
                                "Long-poll requests waiting for events.",
                                value=stats["waiters"])
        yield GaugeMetricFamily("ferry_event_unstored",
                                "Events published but not yet stored in the database.",
                                value=stats["unstored_events"])
        yield CounterMetricFamily("ferry_event_clients_cut_off",
                                  "Subscriptions cut off for falling too far behind.",
                                  value=counters["cut_offs"])
        yield CounterMetricFamily("ferry_event_flushes", "Event chunk writes to the database.",
                                  value=counters["flushes"])
        yield CounterMetricFamily("ferry_event_flush_seconds",
                                  "Time spent writing event chunks (sum; with flushes gives "
                                  "the mean flush latency).", value=counters["flush_seconds"])
        failures = CounterMetricFamily("ferry_ssh_connection_failures",
                                       "Failed SSH connection attempts by kind.",
                                       labels=["reason"])
        for reason, count in sorted(self.ssh_failures().items()):
            failures.add_metric([reason], count)
        yield failures


class Metrics:
    """The registry, the counters the event observer moves, and the scrape."""

    def __init__(self, bus: EventBus, ssh_failures: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.releases = Counter("ferry_releases", "Releases that ended, by project and outcome.",
                                ["project", "outcome"], registry=self.registry)
        self.host_runs = Counter("ferry_host_runs", "Host runs that ended, by outcome.",
                                 ["outcome"], registry=self.registry)
        self.stage_seconds = Histogram("ferry_stage_duration_seconds",
                                       "Duration of finished stages (local and per host).",
                                       ["stage", "outcome"], buckets=STAGE_BUCKETS,
                                       registry=self.registry)
        self.requests = Counter("ferry_http_requests", "HTTP requests by route and status.",
                                ["route", "method", "status"], registry=self.registry)
        self.request_seconds = Histogram("ferry_http_request_duration_seconds",
                                         "HTTP request duration by route.", ["route"],
                                         buckets=REQUEST_BUCKETS, registry=self.registry)
        self.registry.register(_LiveFigures(bus, ssh_failures))
        self._ended: dict[int, str] = {}
        bus.observe(self.observe_event)

    def observe_event(self, event: dict) -> None:
        """Count what a published event says ended (a release, a host run, a stage)."""
        data, kind = event.get("data") or {}, event.get("type")
        if event.get("topic") == "wall" and kind == "release":
            self._release_event(data)
        elif str(event.get("topic", "")).startswith("release:"):
            if kind == "host" and data.get("state") in FINAL_HOST_STATES:
                self.host_runs.labels(data["state"]).inc()
            elif (kind == "stage" and data.get("duration_ms") is not None
                  and data.get("state") not in (None, "running")):
                self.stage_seconds.labels(str(data.get("stage")), str(data["state"])).observe(
                    data["duration_ms"] / 1000)

    def _release_event(self, data: dict) -> None:
        state, release_id = data.get("state"), data.get("release_id")
        if state not in FINAL_RELEASE_STATES or self._ended.get(release_id) == state:
            return
        self._ended[release_id] = state
        if len(self._ended) > 10_000:     # only recent ids can repeat a final state
            for key in list(self._ended)[:5_000]:
                del self._ended[key]
        self.releases.labels(str(data.get("project")), state).inc()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.request_seconds.labels(route).observe(seconds)

    def scrape(self) -> bytes:
        return generate_latest(self.registry)
