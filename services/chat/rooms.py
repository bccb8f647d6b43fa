"""Room names and who may use a room.

Three kinds of room, each a topic `chat:<room>` on the event bus:
`lobby`, `release-<id>` (exists with the release) and `project-<name>` (exists with the
project). Anything else is unknown (404), so a name can never carry `../`, a newline
or a look-alike character anywhere. Who may read and write a room follows who may see
its release or project (services/team/access.py: anyone who sees a project may chat in
its rooms); the lobby is open to every signed-in user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.errors import NotFound
from services.store import Store
from services.team.access import Access
from services.team.auth import User

ROOM = re.compile(r"lobby|release-([1-9][0-9]{0,17})|project-([A-Za-z0-9][A-Za-z0-9_.-]{0,63})",
                  re.ASCII)
LOBBY = "lobby"


@dataclass(frozen=True)
class Room:
    name: str
    release_id: int | None = None
    project: str | None = None

    @property
    def topic(self) -> str:
        return f"chat:{self.name}"


def parse_room(name: Any) -> Room | None:
    """The room a name means, or None when no room can have that name."""
    if not isinstance(name, str):
        return None
    match = ROOM.fullmatch(name)
    if match is None:
        return None
    release, project = match.groups()
    return Room(name, int(release) if release else None, project)


def release_room(release_id: int) -> Room:
    return Room(f"release-{release_id}", release_id=release_id)


def project_room(project: str) -> Room:
    return Room(f"project-{project}", project=project)


class Rooms:
    """Resolves room names against the releases and projects that exist."""

    def __init__(self, store: Store, access: Access) -> None:
        self.store = store
        self.access = access

    async def exists(self, room: Room) -> bool:
        if room.release_id is not None:
            return await self.store.releases.count_documents(
                {"_id": room.release_id}, limit=1) > 0
        if room.project is not None:
            return await self.store.projects.count_documents(
                {"name": room.project}, limit=1) > 0
        return room.name == LOBBY

    async def may_use(self, room: Room, user: User) -> bool:
        """Whether `user` may read and write `room` (one rule for every transport)."""
        if room.release_id is not None:
            return await self.access.may_see_release(user, room.release_id)
        if room.project is not None:
            return await self.exists(room) and await self.access.can(user, room.project,
                                                                     "chat")
        return await self.exists(room)

    async def require(self, name: Any, user: User) -> Room:
        """The room `user` asked for; NotFound (the same answer for a room that does not
        exist and one the user may not see, so names cannot be probed)."""
        room = parse_room(name)
        if room is None or not await self.may_use(room, user):
            raise NotFound(f"no chat room {str(name)[:80]!r}")
        return room

    async def topic_check(self, topic: str, user: User) -> bool:
        """The event bus's check for `chat:<room>` topics (subscribe and poll)."""
        room = parse_room(topic.split(":", 1)[1])
        return room is not None and await self.may_use(room, user)
