"""/api/releases: start (201 + Location, 409 when locked), read, cancel, promote, retry,
roll back, each host's log, and the logs to download."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from handlers.access import UserError, on_release, requires
from handlers.base import ApiHandler
from services.releases.logexport import file_name
from services.releases.service import parse_release_id


def release_summary(release: dict) -> dict:
    """What the audit log keeps of a release that was started: ref, commit, strategy."""
    strategy = release.get("strategy") or {}
    summary = {"kind": release.get("kind"), "ref": release.get("ref"),
               "sha": release.get("sha"), "environment": release.get("environment"),
               "hosts": len(release.get("hosts") or []),
               "strategy": {key: strategy.get(key) for key in (
                   "batches", "parallel", "pause_after", "max_fail", "auto_rollback", "vote")
                   if strategy.get(key) not in (None, [])}}
    if release.get("took_over_lock_from") is not None:
        summary["took_over_lock_from"] = release["took_over_lock_from"]
    return summary


class ReleasesHandler(ApiHandler):
    @requires("member")
    async def get(self) -> None:
        project = self.get_query_argument("project", None)
        limit = self.query_number("limit", "50", int, 1, 10**6)     # the service caps it
        among = await self.services.access.visible_projects(self.current_user)
        self.write_json(await self.services.releases.list(project, limit, among))

    @requires("member")
    async def post(self) -> None:
        # Through the gates: approval, freeze windows, not_before (services/releases/gates.py)
        body = self.get_json_body()
        if isinstance(body.get("project"), str):     # else the service says what is wrong
            await self.services.access.require(self.current_user, body["project"], "deploy")
        release = await self.services.gates.create(self.current_user, body)
        await self.audit("release.create", release["id"], project=release.get("project"),
                         details=release_summary(release))
        if release.get("not_before"):
            await self.audit("release.schedule", release["id"], project=release["project"],
                             details={"not_before": release["not_before"]})
        if release.get("freeze_override"):
            await self.audit("freeze.override", release["id"], project=release["project"],
                             details=release["freeze_override"])
        self.set_header("Location", f"/api/releases/{release['id']}")
        self.write_json(release, status=201)


class ReleaseHandler(ApiHandler):
    """GET a release; `?wait=S`: answer once it ends or pauses, or after S seconds."""

    _waiting: asyncio.Future | None = None

    @on_release("view")
    async def get(self, release_id: str) -> None:
        wait = self.query_number("wait", "0", float, 0,
                                 self.services.settings.release_wait_max_s)
        self._waiting = asyncio.ensure_future(
            self.services.releases.get(parse_release_id(release_id), wait))
        try:
            release = await self._waiting
        except asyncio.CancelledError:
            if self.request.connection.stream.closed():
                return                    # the client left; nobody to answer
            raise
        self.write_json(release)

    def on_connection_close(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()


class ReleaseActionHandler(ApiHandler):
    """POST cancel / promote / retry."""

    @on_release("deploy")
    async def post(self, release_id: str, action: str) -> None:
        releases = self.services.releases
        if action == "retry":
            release = await releases.retry(self.current_user, parse_release_id(release_id))
            await self.audit("release.retry", release_id, project=release.get("project"),
                             details={**release_summary(release), "release": release["id"]})
            self.set_header("Location", f"/api/releases/{release['id']}")
            self.write_json(release, status=201)
            return
        number = parse_release_id(release_id)
        if action == "cancel":      # one not started yet (scheduled, awaiting approval)
            held = await self.services.gates.cancel(self.current_user, number)
            if held is not None:
                await self.audit("release.cancel", number, project=held["project"],
                                 details={"before_start": True})
                self.write_json(held, status=202)
                return
        # Through the vote, which closes an open one as overridden by this user.
        vote = await self.services.chat.votes.latest(number)
        result = await self.services.chat.votes.override(self.current_user, number, action)
        details = {}
        if vote is not None and vote["state"] == "open":
            details["vote_overridden"] = {"batch": vote["batch"], "votes": [
                {"user": v["user"], "choice": v["choice"]} for v in vote["votes"]]}
        await self.audit(f"release.{action}", number, project=result.get("project"),
                         details=details)
        self.write_json(result, status=202)


class ReleaseRollbackHandler(ApiHandler):
    """GET: what a rollback would do (target, hosts); POST: start it."""

    @on_release("view")
    async def get(self, release_id: str) -> None:
        to = self.get_query_argument("to", None)
        target = None if to is None else parse_release_id(to)
        self.write_json(await self.services.releases.rollback_plan(
            parse_release_id(release_id), target))

    @on_release("deploy")
    async def post(self, release_id: str) -> None:
        to = self.get_json_body().get("to")
        if to is not None and (isinstance(to, bool) or not isinstance(to, int)):
            raise UserError(400, "to must be a release id")
        release = await self.services.releases.rollback(
            self.current_user, parse_release_id(release_id), to)
        await self.audit("release.rollback", release_id, project=release.get("project"),
                         details={**release_summary(release), "release": release["id"],
                                  "to": release.get("target_release")})
        self.set_header("Location", f"/api/releases/{release['id']}")
        self.write_json(release, status=201)


class HostLogHandler(ApiHandler):
    """A page of one host's log as JSON; `?format=text`: all of it, as a text download."""

    @on_release("view")
    async def get(self, release_id: str, host: str) -> None:
        fmt = self.get_query_argument("format", "json")
        if fmt not in ("json", "text"):
            raise UserError(400, "format must be json or text")
        if fmt == "text":
            number = parse_release_id(release_id)
            await send_download(self, self.services.log_export.host_text(number, host),
                                "text/plain; charset=utf-8", file_name(number, host))
            return
        after = self.query_number("after", "0", int, 0, 2**63 - 1)
        limit = self.query_number("limit", "5000", int, 1, 10**6)   # the service caps it
        self.write_json(await self.services.releases.host_log(
            parse_release_id(release_id), host, after, limit))


class ReleaseLogsHandler(ApiHandler):
    """GET every log of a release as one zip: summary.txt, build.log, <host>.log each."""

    @on_release("view")
    async def get(self, release_id: str) -> None:
        number = parse_release_id(release_id)
        await send_download(self, self.services.log_export.release_zip(number),
                            "application/zip", f"release-{number}-logs.zip")


async def send_download(handler: ApiHandler, chunks: AsyncIterator[bytes], content_type: str,
                        filename: str) -> None:
    """Stream `chunks` as an attachment, flushing each one (bounded memory); an error
    before the first byte (an unknown release) is answered as JSON as usual."""
    async with contextlib.aclosing(chunks):
        started = False
        async for chunk in chunks:
            if not started:
                started = True
                handler.set_header("Content-Type", content_type)
                handler.set_header("Content-Disposition", f'attachment; filename="{filename}"')
            if chunk:
                handler.write(chunk)
                await handler.flush()
    if not started:
        handler.set_header("Content-Type", content_type)
        handler.set_header("Content-Disposition", f'attachment; filename="{filename}"')
    handler.finish()


class ReleaseCommitsHandler(ApiHandler):
    """GET the commits the release ships (previous successful release..this one)."""

    @on_release("view")
    async def get(self, release_id: str) -> None:
        release = await self.services.releases.find(parse_release_id(release_id))
        self.write_json(await self.services.history.commits(release))
