"""Git webhooks: pushes from GitHub, GitLab and Gitea, and a project's webhook settings."""

from __future__ import annotations

from handlers.access import UserError, public, requires
from handlers.base import ApiHandler
from services.webhooks import WebhookRefused


class WebhookHandler(ApiHandler):
    """POST /hooks/<provider>/<project>: the signature is the only credential."""

    async def prepare(self) -> None:
        """No session or token: a provider sends neither (and no XSRF cookie)."""

    def check_xsrf_cookie(self) -> None:
        """The signature authenticates the request; no browser can forge it."""

    @public
    async def post(self, provider: str, project: str) -> None:
        settings = self.services.settings
        if len(self.request.body) > settings.webhook_max_body_bytes:
            raise UserError(413, f"payload larger than {settings.webhook_max_body_bytes} bytes")
        headers = {name.lower(): value for name, value in self.request.headers.get_all()}
        try:
            outcome = await self.services.webhooks.receive(provider, project, headers,
                                                           self.request.body)
        except WebhookRefused:
            # Once a minute per address and endpoint: unsigned floods must not fill the log.
            address = self.client_address()
            await self.services.audit.record_every(
                f"webhook.refused:{address}:{provider}:{project}",
                settings.webhook_refused_audit_every_s,
                self.actor(via=f"webhook:{provider}"), "webhook.refused", project,
                details={"provider": provider})
            raise
        if outcome.release is not None:
            await self.audit("release.create", outcome.release["id"], project=project,
                             details={"ref": outcome.release.get("ref")},
                             via=f"webhook:{provider}", actor=outcome.pusher)
        self.write_json(outcome.body, outcome.status)


class ProjectWebhookHandler(ApiHandler):
    """GET/PUT /api/projects/<name>/webhook: rules and secret (maintainers)."""

    @requires("member")
    async def get(self, project: str) -> None:
        await self.services.access.require(self.current_user, project, "edit")
        self.write_json(await self.services.webhooks.get(project))

    @requires("member")
    async def put(self, project: str) -> None:
        await self.services.access.require(self.current_user, project, "edit")
        result = await self.services.webhooks.configure(project, self.get_json_body())
        await self.audit("project.webhook", project, project=project, details={
            "rules": result["rules"], "secret_changed": "secret" in result
            or "secret" in self.get_json_body()})
        self.write_json(result)
