"""Releases before they start: approve, reject, start a scheduled release now, read a
release's approval, and the releases waiting (for the dashboard)."""

from __future__ import annotations

from handlers.access import requires
from handlers.base import ApiHandler
from services.releases.service import parse_release_id


class ReleaseGateHandler(ApiHandler):
    """POST approve ({comment}), reject ({comment}), start ({override_freeze})."""

    @requires("member")
    async def post(self, release_id: str, action: str) -> None:
        number = parse_release_id(release_id)
        body = self.get_json_body()
        user, gates = self.current_user, self.services.gates
        project = await self.services.access.require_release(
            user, number, "deploy" if action == "start" else "view")
        if action == "approve":
            release = await gates.approve(user, number, body.get("comment"))
            details = {"comment": body.get("comment"), "state": release["state"]}
        elif action == "reject":
            release = await gates.reject(user, number, body.get("comment"))
            details = {"comment": body.get("comment")}
        else:
            release = await gates.start_now(user, number, body.get("override_freeze"))
            details = {"state": release["state"]}
        await self.audit(f"release.{'start_now' if action == 'start' else action}", number,
                         project=project, details=details)
        if release.get("freeze_override") and action == "start":
            await self.audit("freeze.override", number, project=project,
                             details=release["freeze_override"])
        self.write_json(release)


class ReleaseApprovalHandler(ApiHandler):
    """GET a release's approval: rules, who approved, who is awaited, what I may do."""

    @requires("member")
    async def get(self, release_id: str) -> None:
        number = parse_release_id(release_id)
        await self.services.access.require_release(self.current_user, number, "view")
        self.write_json(await self.services.gates.approval(self.current_user, number))


class WaitingReleasesHandler(ApiHandler):
    """GET the releases awaiting my approval, and the scheduled ones I can see."""

    @requires("member")
    async def get(self) -> None:
        waiting = await self.services.gates.waiting(self.current_user)
        visible = await self.services.access.visible_projects(self.current_user)
        if visible is not None:
            waiting = {key: [release for release in releases if release["project"] in visible]
                       for key, releases in waiting.items()}
        self.write_json(waiting)

