"""Users (admins manage them), project members (admins and project maintainers), and the
pages for users and for one's own API tokens.

Tokens themselves are in handlers/auth.py, beside sign-in. Who may do what on a project
is decided in services/team/access.py; these handlers only ask it.
"""

from __future__ import annotations

from handlers.access import UserError, on_project, requires
from handlers.base import ApiHandler
from handlers.pages import PageHandler


class UsersHandler(ApiHandler):
    """GET every user (with when each last signed in); POST {name, password, role}."""

    @requires("admin")
    async def get(self) -> None:
        self.write_json({"users": await self.services.auth.list_users()})

    @requires("admin")
    async def post(self) -> None:
        body = self.get_json_body()
        unknown = set(body) - {"name", "password", "role"}
        if unknown:
            raise UserError(400, f"unknown user field(s): {', '.join(sorted(unknown))}")
        user = await self.services.auth.create_user(body.get("name"), body.get("password"),
                                                    body.get("role"))
        await self.audit("user.create", user.name, details={"role": user.role})
        self.set_header("Location", f"/api/users/{user.name}")
        self.write_json(await self.services.auth.get_user(user.name), status=201)


class UserHandler(ApiHandler):
    """GET one user; PUT any of {role, password, disabled}."""

    @requires("admin")
    async def get(self, name: str) -> None:
        self.write_json(await self.services.auth.get_user(name))

    @requires("admin")
    async def put(self, name: str) -> None:
        user, changed = await self.services.auth.update_user(name, self.get_json_body())
        if "disabled" in changed:
            await self.audit("user.disable" if user["disabled"] else "user.enable", name)
        rest = {key: value for key, value in changed.items() if key != "disabled"}
        if rest:
            await self.audit("user.update", name, details=rest)
        self.write_json(user)


class ProjectMembersHandler(ApiHandler):
    """GET a project's members (anyone who sees the project)."""

    @on_project("view")
    async def get(self, project: str) -> None:
        self.write_json({"project": project,
                         "members": await self.services.access.members(project)})


class ProjectMemberHandler(ApiHandler):
    """PUT {"role"} adds or changes a member; DELETE removes one (admins and the
    project's maintainers)."""

    @on_project("members")
    async def put(self, project: str, user: str) -> None:
        member = await self.services.access.set_member(
            project, user, self.get_json_body().get("role"), self.current_user)
        previous = member.pop("previous")
        if previous != member["role"]:
            await self.audit("member.set", user, project=project,
                             details={"role": [previous, member["role"]]})
        self.write_json(member)

    @on_project("members")
    async def delete(self, project: str, user: str) -> None:
        role = await self.services.access.remove_member(project, user)
        await self.audit("member.remove", user, project=project, details={"role": role})
        self.set_status(204)
        self.finish()


class UsersPage(PageHandler):
    @requires("admin")
    def get(self) -> None:
        self.render_page("users.html")


class TokensPage(PageHandler):
    @requires("member")
    def get(self) -> None:
        self.render_page("tokens.html")
