"""/api/projects: the project registry, its refs and commits."""

from __future__ import annotations

from handlers.access import on_project, requires
from handlers.base import ApiHandler
from services.registry.projects import public_project
from services.registry.redact import field_changes


class ProjectsHandler(ApiHandler):
    @requires("member")
    async def get(self) -> None:
        among = await self.services.access.visible_projects(self.current_user)
        self.write_json({"projects": await self.services.projects.list(among)})

    @requires("admin")
    async def post(self) -> None:
        project = await self.services.projects.create(self.get_json_body())
        await self.audit("project.create", project["name"], project=project["name"],
                         details={"changes": field_changes(None, project)})
        self.set_header("Location", f"/api/projects/{project['name']}")
        self.write_json(project, status=201)


class ProjectHandler(ApiHandler):
    @on_project("view")
    async def get(self, name: str) -> None:
        self.write_json(public_project(await self.services.projects.get(name)))

    @on_project("edit")
    async def put(self, name: str) -> None:
        # Stored documents on both sides, so a change of credentials alone shows (masked).
        body = self.get_json_body()
        before = await self.services.projects.get(name)
        self.services.access.check_project_change(self.project_role, body, before)
        project = await self.services.projects.update(name, body)
        after = await self.services.projects.get(name)
        await self.audit("project.update", name, project=name,
                         details={"changes": field_changes(before, after)})
        self.write_json(project)

    @requires("admin")
    async def delete(self, name: str) -> None:
        before = await self.services.projects.get(name)
        await self.services.projects.delete(name)
        await self.services.access.forget_project(name)
        await self.audit("project.delete", name, project=name,
                         details={"changes": field_changes(before, None)})
        self.set_status(204)
        self.finish()


class ProjectRefsHandler(ApiHandler):
    @on_project("view")
    async def get(self, name: str) -> None:
        self.write_json(await self.services.projects.refs(name))


class ProjectRefreshHandler(ApiHandler):
    @on_project("deploy")
    async def post(self, name: str) -> None:
        refs = await self.services.projects.refresh(name)
        if refs.get("fetched"):          # at most once per git_refresh_min_interval_s
            await self.audit("project.refresh", name, project=name)
        self.write_json(refs)


class ProjectCommitsHandler(ApiHandler):
    @on_project("view")
    async def get(self, name: str) -> None:
        ref = self.get_query_argument("ref", None)
        base = self.get_query_argument("base", None)
        self.write_json({"commits": await self.services.projects.commits(name, ref, base)})
