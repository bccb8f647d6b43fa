"""/api/releases: start (201 + Location, 409 when locked), read, cancel, promote, retry,
roll back, and each host's log."""

from __future__ import annotations

from handlers.access import UserError, requires
from handlers.base import ApiHandler
from services.releases.service import parse_release_id


class ReleasesHandler(ApiHandler):
    @requires("viewer")
    async def get(self) -> None:
        project = self.get_query_argument("project", None)
        limit = self.query_number("limit", "50", int, 1, 10**6)     # the service caps it
        self.write_json(await self.services.releases.list(project, limit))

    @requires("deployer")
    async def post(self) -> None:
        release = await self.services.releases.create(self.current_user, self.get_json_body())
        self.set_header("Location", f"/api/releases/{release['id']}")
        self.write_json(release, status=201)


class ReleaseHandler(ApiHandler):
    @requires("viewer")
    async def get(self, release_id: str) -> None:
        self.write_json(await self.services.releases.get(parse_release_id(release_id)))


class ReleaseActionHandler(ApiHandler):
    """POST cancel / promote / retry."""

    @requires("deployer")
    async def post(self, release_id: str, action: str) -> None:
        releases = self.services.releases
        if action == "retry":
            release = await releases.retry(self.current_user, parse_release_id(release_id))
            self.set_header("Location", f"/api/releases/{release['id']}")
            self.write_json(release, status=201)
            return
        # Through the vote, which closes an open one as overridden by this user.
        self.write_json(await self.services.chat.votes.override(
            self.current_user, parse_release_id(release_id), action), status=202)


class ReleaseRollbackHandler(ApiHandler):
    """GET: what a rollback would do (target, hosts); POST: start it."""

    @requires("viewer")
    async def get(self, release_id: str) -> None:
        to = self.get_query_argument("to", None)
        target = None if to is None else parse_release_id(to)
        self.write_json(await self.services.releases.rollback_plan(
            parse_release_id(release_id), target))

    @requires("deployer")
    async def post(self, release_id: str) -> None:
        to = self.get_json_body().get("to")
        if to is not None and (isinstance(to, bool) or not isinstance(to, int)):
            raise UserError(400, "to must be a release id")
        release = await self.services.releases.rollback(
            self.current_user, parse_release_id(release_id), to)
        self.set_header("Location", f"/api/releases/{release['id']}")
        self.write_json(release, status=201)


class HostLogHandler(ApiHandler):
    @requires("viewer")
    async def get(self, release_id: str, host: str) -> None:
        after = self.query_number("after", "0", int, 0, 2**63 - 1)
        limit = self.query_number("limit", "5000", int, 1, 10**6)   # the service caps it
        self.write_json(await self.services.releases.host_log(
            parse_release_id(release_id), host, after, limit))
