"""Chat rooms, Ferry's own system messages, chat commands and the go/no-go vote.

Owns: room names and who may read or write them (`rooms.py`), messages and their limits
(`messages.py`), what Ferry says about releases (`narrator.py`), `/commands`
(`commands.py`), votes (`votes.py`, state in the `votes` collection) and what a
big-screen vote page is sent (`screen.py`).

May import: services.events (every message is an event on `chat:<room>`, published
through the bus: the same seq, cursor, transports and storage as everything else),
services.releases (to promote, cancel and roll back, exactly as the API does),
services.team (users, roles and who may do what on which project), services.store,
services.settings, services.errors.
Nothing here imports Tornado.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from services.chat.commands import Commands, is_command
from services.chat.messages import Messages
from services.chat.narrator import Narrator
from services.chat.rooms import Rooms
from services.chat.screen import VoteScreen
from services.chat.votes import Votes
from services.settings import Settings
from services.store import Store
from services.team.auth import User

if TYPE_CHECKING:
    from services.events.bus import EventBus
    from services.releases.service import ReleaseService
    from services.team.access import Access
    from services.team.audit import AuditLog


class ChatService:
    """Rooms, messages, commands, votes and the narrator, wired to the bus and releases."""

    def __init__(self, settings: Settings, store: Store, events: EventBus,
                 releases: ReleaseService, access: Access,
                 cancel_held: Callable[[User, int], Awaitable[dict | None]],
                 audit: AuditLog | None = None) -> None:
        self.events = events
        self.rooms = Rooms(store, access)
        self.messages = Messages(settings, events, self.rooms)
        self.votes = Votes(settings, store, events, releases, self.messages, access, audit)
        self.screen = VoteScreen(releases, self.votes, self.messages,
                                 settings.vote_screen_chat_lines)
        self.commands = Commands(releases, self.votes, self.messages, self.rooms, access,
                                 cancel_held)
        self.narrator = Narrator(settings, store, events, self.messages, self.votes)

    async def open(self) -> None:
        """Take over the `chat:` topic check, then start narrating and timing votes."""
        self.events.register_topic("chat:", self.rooms.topic_check, shared=True)
        await self.votes.open()
        await self.narrator.open()

    async def close(self) -> None:
        await self.narrator.close()
        await self.votes.close()

    async def post(self, user: User, room_name: str, text: Any) -> dict:
        """A user's message (or command) in a room they may use: cleaned, capped and
        counted against their rate before anything else happens."""
        room = await self.rooms.require(room_name, user)
        text = self.messages.clean(text)
        self.messages.spend(user)
        if is_command(text):
            return await self.commands.run(user, room, text)
        if text.startswith("//"):
            text = text[1:]
        return await self.messages.post(user, room, text)

    async def history(self, user: User, room_name: str, before: int | None,
                      limit: int) -> dict:
        room = await self.rooms.require(room_name, user)
        return await self.messages.history(room, before, limit)
