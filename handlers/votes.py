"""/api/releases/<id>/vote: the go/no-go vote of a paused release (read, cast)."""

from __future__ import annotations

from handlers.access import requires
from handlers.base import ApiHandler
from services.releases.service import parse_release_id


class ReleaseVoteHandler(ApiHandler):
    @requires("viewer")
    async def get(self, release_id: str) -> None:
        self.write_json(await self.services.chat.votes.get(parse_release_id(release_id)))

    @requires("deployer")
    async def post(self, release_id: str) -> None:
        body = self.get_json_body()
        vote = await self.services.chat.votes.cast(
            self.current_user, parse_release_id(release_id), body.get("choice"),
            body.get("comment"))
        self.write_json(vote)
