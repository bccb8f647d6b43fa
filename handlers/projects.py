"""/api/projects: the project registry, its refs and commits."""

from __future__ import annotations

from handlers.access import requires
from handlers.base import ApiHandler
from services.registry.projects import public_project


class ProjectsHandler(ApiHandler):
    @requires("viewer")
    async def get(self) -> None:
        self.write_json({"projects": await self.services.projects.list()})

    @requires("admin")
    async def post(self) -> None:
        project = await self.services.projects.create(self.get_json_body())
        self.set_header("Location", f"/api/projects/{project['name']}")
        self.write_json(project, status=201)


class ProjectHandler(ApiHandler):
    @requires("viewer")
    async def get(self, name: str) -> None:
        self.write_json(public_project(await self.services.projects.get(name)))

    @requires("admin")
    async def put(self, name: str) -> None:
        self.write_json(await self.services.projects.update(name, self.get_json_body()))

    @requires("admin")
    async def delete(self, name: str) -> None:
        await self.services.projects.delete(name)
        self.set_status(204)
        self.finish()


class ProjectRefsHandler(ApiHandler):
    @requires("viewer")
    async def get(self, name: str) -> None:
        self.write_json(await self.services.projects.refs(name))


class ProjectRefreshHandler(ApiHandler):
    @requires("deployer")
    async def post(self, name: str) -> None:
        self.write_json(await self.services.projects.refresh(name))


class ProjectCommitsHandler(ApiHandler):
    @requires("viewer")
    async def get(self, name: str) -> None:
        ref = self.get_query_argument("ref", None)
        base = self.get_query_argument("base", None)
        self.write_json({"commits": await self.services.projects.commits(name, ref, base)})
