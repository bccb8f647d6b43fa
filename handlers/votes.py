"""/api/releases/<id>/vote: the go/no-go vote of a paused release (read, cast)."""

from __future__ import annotations

from handlers.access import on_release
from handlers.base import ApiHandler
from services.releases.service import parse_release_id


class ReleaseVoteHandler(ApiHandler):
    @on_release("view")
    async def get(self, release_id: str) -> None:
        self.write_json(await self.services.chat.votes.get(parse_release_id(release_id)))

    @on_release("vote")
    async def post(self, release_id: str) -> None:
        body = self.get_json_body()
        number = parse_release_id(release_id)
        vote = await self.services.chat.votes.cast(
            self.current_user, number, body.get("choice"), body.get("comment"))
        release = await self.services.releases.find(number)
        await self.audit("release.vote", number, project=release.get("project"), details={
            "choice": body.get("choice"), "comment": body.get("comment"),
            "vote": vote.get("state")})
        self.write_json(vote)
