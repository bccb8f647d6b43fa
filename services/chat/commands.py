"""Chat commands: `/promote`, `/cancel`, `/rollback`, `/go [comment]`, `/nogo [comment]`,
`/status`, `/help`.

A command is checked against the sender's role on the release's project exactly as the
API checks the same action (services/team/access.py; the action table below is the
API's), and does what the API does, through the same services. A refused or failed
command posts nothing: the sender alone gets the reason (the POST answers 403/409/400
with it). A command that ran is posted as the sender's
message, followed by Ferry's reply. The rest of a command line is only ever a comment
(text, never parsed further, never reaching a shell). `//text` posts "/text" as is.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from services.chat.messages import Messages
from services.chat.rooms import Room, Rooms
from services.chat.votes import Votes
from services.errors import Forbidden, Invalid
from services.team.auth import User

if TYPE_CHECKING:
    from services.releases.service import ReleaseService
    from services.team.access import Access

COMMAND = re.compile(r"/([A-Za-z][A-Za-z-]{0,19})(?:[ \t\n]+(.*))?", re.S)
# name: (action on the release's project, takes a comment)
COMMANDS = {"promote": ("deploy", False), "cancel": ("deploy", False),
            "rollback": ("deploy", False), "go": ("vote", True),
            "nogo": ("vote", True), "no-go": ("vote", True),
            "status": ("view", False), "help": ("view", False)}
HELP = ("Commands: /status; deployers: /promote, /cancel, /rollback, /go [comment], "
        "/nogo [comment]. Start a message with // to post a slash.")


def is_command(text: str) -> bool:
    return text.startswith("/") and not text.startswith("//")


class Commands:
    """Runs one command for one user in one room."""

    def __init__(self, releases: ReleaseService, votes: Votes, messages: Messages,
                 rooms: Rooms, access: Access,
                 cancel_held: Callable[[User, int], Awaitable[dict | None]]) -> None:
        self.releases = releases
        # Cancels a release that has not started (scheduled, awaiting approval); None
        # when it is not held. The API's cancel does the same first.
        self.cancel_held = cancel_held
        self.access = access
        self.votes = votes
        self.messages = messages
        self.rooms = rooms

    async def run(self, user: User, room: Room, text: str) -> dict:
        """Run the command in `text`; the sender's message with Ferry's `reply`."""
        match = COMMAND.fullmatch(text)
        name = match.group(1).lower() if match else ""
        if name not in COMMANDS:
            raise Invalid(f"unknown command {text.split()[0][:30]!r}. {HELP}")
        action, takes_comment = COMMANDS[name]
        if room.release_id is not None:
            try:
                await self.access.require_release(user, room.release_id, action)
            except Forbidden as error:
                raise Forbidden(f"/{name}: {error}; nothing was done") from None
        argument = (match.group(2) or "").strip()
        if argument and not takes_comment:
            raise Invalid(f"/{name} takes no arguments")
        if name == "help":
            reply = HELP
        elif room.release_id is None:
            raise Invalid(f"/{name} works in a release's room (release-<id>)")
        else:
            reply, done = await self._release_command(user, room.release_id, name, argument)
        message = await self.messages.post(user, room, text)
        if reply:
            message["reply"] = await self.messages.system(room, reply)
        audited = audit_action(text)
        if audited is not None:
            message["audit"] = (audited[0], {**audited[1], **done})
        return message

    async def _release_command(self, user: User, release_id: int, name: str,
                               argument: str) -> tuple[str | None, dict]:
        """Ferry's reply, and what the audit entry adds to the command's own details."""
        if name == "cancel" and await self.cancel_held(user, release_id) is not None:
            return (f"{user.name} cancelled release #{release_id} before it started.",
                    {"before_start": True})
        if name in ("promote", "cancel"):
            await self.votes.override(user, release_id, name)
            verb = "promoted" if name == "promote" else "cancelled"
            return f"{user.name} {verb} release #{release_id}.", {}
        if name == "rollback":
            started = await self.releases.rollback(user, release_id, None)
            return (f"{user.name} started release #{started['id']}: a rollback of "
                    f"#{release_id} to release #{started['target_release']}.",
                    {"release": started["id"], "to": started["target_release"]})
        if name in ("go", "nogo", "no-go"):
            await self.votes.cast(user, release_id, "go" if name == "go" else "no_go",
                                  argument or None)
            return None, {}
        return await self.status(release_id), {}

    async def status(self, release_id: int) -> str:
        release = await self.releases.find(release_id)
        counts = release.get("counts") or {}
        shown = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        text = (f"Release #{release_id}: {release.get('kind', 'deploy')} of "
                f"{release.get('ref')} ({str(release.get('sha'))[:10]}) by "
                f"{release.get('created_by')}: {release['state']}")
        if release["state"] == "paused":
            text += f" after batch {release.get('paused_after_batch')}"
        text += f"; hosts: {shown or 'none yet'}."
        vote = await self.votes.latest(release_id)
        if vote is not None and vote["state"] == "open":
            go = sum(v["choice"] == "go" for v in vote["votes"])
            no_go = len(vote["votes"]) - go
            text += (f" Vote open: {go} go of {vote['rules']['min_go']}, "
                     f"{no_go} no-go.")
        return text


# Commands that change a release, and the audit action each is (the API's own names).
AUDITED = {"promote": "release.promote", "cancel": "release.cancel",
           "rollback": "release.rollback", "go": "release.vote", "nogo": "release.vote",
           "no-go": "release.vote"}


def audit_action(text: str) -> tuple[str, dict] | None:
    """The audit action and details of a command that ran, or None when `text` is a
    message or a command that changes nothing (/status, /help)."""
    match = COMMAND.fullmatch(text) if is_command(text) else None
    name = match.group(1).lower() if match else ""
    if name not in AUDITED:
        return None
    details: dict = {"command": f"/{name}"}
    if AUDITED[name] == "release.vote":
        details["choice"] = "go" if name == "go" else "no_go"
        details["comment"] = (match.group(2) or "").strip() or None
    return AUDITED[name], details
