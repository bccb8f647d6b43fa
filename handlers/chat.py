"""/api/chat/<room>/messages: post a message or a /command, read history backwards.

Live messages come from the event bus as any topic does (`chat:<room>` over /ws or
/api/events). A refused command answers 403 with the reason, to its sender only.
"""

from __future__ import annotations

from handlers.access import UserError, requires
from handlers.base import ApiHandler
from services.chat.rooms import parse_room

MAX_ID = 2**53


class ChatMessagesHandler(ApiHandler):
    @requires("member")
    async def get(self, room: str) -> None:
        before = self._whole("before", None, 1, MAX_ID)
        limit = self._whole("limit", "50", 1, self.services.settings.chat_history_page_max)
        self.write_json(await self.services.chat.history(self.current_user, room, before,
                                                         limit))

    @requires("member")
    async def post(self, room: str) -> None:
        body = self.get_json_body()
        message = await self.services.chat.post(self.current_user, room, body.get("text"))
        done = message.pop("audit", None)         # a command that changed a release
        release_id = getattr(parse_room(room), "release_id", None)
        if done is not None and release_id is not None:
            release = await self.services.releases.find(release_id)
            await self.audit(done[0], release_id, project=release.get("project"),
                             details=done[1], via="chat")
        self.write_json(message, status=201)

    def _whole(self, name: str, default: str | None, low: int, high: int) -> int | None:
        text = self.get_query_argument(name, default)
        if text is None:
            return None
        if not text.isdigit() or len(text) > 16 or not low <= int(text) <= high:
            raise UserError(400, f"{name} must be a whole number from {low} to {high}")
        return int(text)
