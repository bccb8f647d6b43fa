"""Health and metrics: /healthz and /readyz for load balancers, /metrics for Prometheus."""

from __future__ import annotations

import hmac

from handlers.access import UserError, public
from handlers.base import ApiHandler
from services.metrics import CONTENT_TYPE


class HealthzHandler(ApiHandler):
    """The process answers: no database, no user lookup."""

    async def prepare(self) -> None:
        """Nothing to resolve: a probe must stay cheap whatever it sends."""

    @public
    def get(self) -> None:
        self.write_json({"status": "ok"})


class ReadyzHandler(ApiHandler):
    """Ready for traffic: the database answers and Ferry is not shutting down (else 503)."""

    async def prepare(self) -> None:
        """Nothing to resolve: a probe must stay cheap whatever it sends."""

    @public
    async def get(self) -> None:
        problem = await self.services.readiness()
        if problem:
            raise UserError(503, problem)
        self.write_json({"status": "ok"})


class MetricsHandler(ApiHandler):
    """Prometheus' text format. With a metrics token configured, only that bearer token;
    on the separate metrics listener, anyone who can reach it; else an admin's credentials;
    on the main port it is absent when a separate listener is configured."""

    async def prepare(self) -> None:
        """The separate listener knows no sessions: nothing to resolve there."""
        if not self.application.settings.get("metrics_listener", False):
            await super().prepare()

    @public
    def get(self) -> None:
        settings = self.services.settings
        on_own_listener = self.application.settings.get("metrics_listener", False)
        if settings.metrics_port and not on_own_listener:
            raise UserError(404, "metrics are served on their own address")
        if settings.metrics_token:
            sent = self.request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(sent.encode(), settings.metrics_token.encode()):
                raise UserError(401, "the metrics token is required")
        elif not on_own_listener:
            user = self.current_user
            if user is None:
                raise UserError(401, "authentication required")
            if not user.can("admin"):
                raise UserError(403, "requires the admin role")
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(self.services.metrics.scrape())
