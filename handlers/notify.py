"""A project's notification channels, their test message and their delivery log."""

from __future__ import annotations

from handlers.access import requires
from handlers.base import ApiHandler


class ChannelsHandler(ApiHandler):
    """GET/POST /api/projects/<name>/notifications."""

    @requires("member")
    async def get(self, project: str) -> None:
        await self.services.access.require(self.current_user, project, "view")
        self.write_json({"channels": await self.services.notify.list(project)})

    @requires("member")
    async def post(self, project: str) -> None:
        await self.services.access.require(self.current_user, project, "edit")
        channel = await self.services.notify.create(project, self.get_json_body())
        await self.audit("project.notify.create", channel["id"], project=project,
                         details={"kind": channel["kind"], "name": channel["name"]})
        self.write_json(channel, status=201)


class ChannelHandler(ApiHandler):
    """PUT/DELETE /api/projects/<name>/notifications/<id>."""

    @requires("member")
    async def put(self, project: str, channel_id: str) -> None:
        await self.services.access.require(self.current_user, project, "edit")
        body = self.get_json_body()
        channel = await self.services.notify.update(project, channel_id, body)
        await self.audit("project.notify.update", channel_id, project=project,
                         details={"fields": sorted(body)})
        self.write_json(channel)

    @requires("member")
    async def delete(self, project: str, channel_id: str) -> None:
        await self.services.access.require(self.current_user, project, "edit")
        await self.services.notify.delete(project, channel_id)
        await self.audit("project.notify.delete", channel_id, project=project)
        self.set_status(204)
        self.finish()


class ChannelTestHandler(ApiHandler):
    """POST /api/projects/<name>/notifications/<id>/test: queue a test message."""

    @requires("member")
    async def post(self, project: str, channel_id: str) -> None:
        await self.services.access.require(self.current_user, project, "edit")
        self.write_json(await self.services.notify.send_test(project, channel_id), status=202)


class ChannelLogHandler(ApiHandler):
    """GET /api/projects/<name>/notifications/<id>/deliveries: newest first."""

    @requires("member")
    async def get(self, project: str, channel_id: str) -> None:
        await self.services.access.require(self.current_user, project, "view")
        limit = self.query_number("limit", "50", int, 1, 200)
        self.write_json({"deliveries": await self.services.notify.delivery_log(
            project, channel_id, limit)})
