"""HTML pages: dashboard, hosts, projects, project, new release and the release console.

Pages only render a template; their scripts (static/js/) read and change everything through
the JSON API and follow releases through the event client (static/js/events.js). Every page
is sent with a strict Content-Security-Policy: no inline script or style anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.escape
import tornado.web

from handlers.access import UserError, on_project, on_release, public, requires
from handlers.base import BaseHandler, same_site_path
from handlers.locale import LOCALE_COOKIE, cookie_locale, translations
from services.releases.service import parse_release_id

NODE_MODULES = Path(__file__).resolve().parent.parent / "node_modules"
VENDOR_DIRS = {
    "cytoscape": NODE_MODULES / "cytoscape" / "dist",
    "cytoscape-dagre": NODE_MODULES / "cytoscape-dagre" / "dist",
    "uplot": NODE_MODULES / "uplot" / "dist",
    "swagger-ui": NODE_MODULES / "swagger-ui-dist",
}
class PageHandler(BaseHandler):
    """The XSRF cookie, the translated strings for the page's scripts, and the role the
    page's buttons follow: the user's role on the page's project when it is about one
    (`project_role`, set by @on_project / @on_release), else their global role."""

    project_role: str | None = None

    def render_page(self, template: str, **kwargs: Any) -> None:
        self.xsrf_token  # noqa: B018 — sets the _xsrf cookie the scripts send back
        strings = tornado.escape.json_encode(translations(self.locale))
        self.render(template, i18n=strings, page_role=self.project_role, **kwargs)


class DashboardPage(PageHandler):
    @requires("member")
    def get(self) -> None:
        self.render_page("dashboard.html")


class HostsPage(PageHandler):
    @requires("viewer")
    def get(self) -> None:
        self.render_page("hosts.html")


class HostPage(PageHandler):
    """One host: its releases across projects, what `current` points to, its failures."""

    @requires("viewer")
    async def get(self, name: str) -> None:
        host = await self.services.hosts.get(name)
        self.render_page("host.html", host=host)


class ProjectsPage(PageHandler):
    @requires("member")
    def get(self) -> None:
        self.render_page("projects.html")


class ProjectPage(PageHandler):
    @on_project("view")
    async def get(self, name: str) -> None:
        project = await self.services.projects.get(name)
        self.render_page("project.html", project=project)


class NewReleasePage(PageHandler):
    @on_project("deploy")
    async def get(self, name: str) -> None:
        project = await self.services.projects.get(name)
        self.render_page("new_release.html", project=project)


class ReleasePage(PageHandler):
    @on_release("view")
    async def get(self, release_id: str) -> None:
        release = await self.services.releases.find(parse_release_id(release_id))
        self.render_page("release.html", release_id=release["id"])


class LocaleHandler(PageHandler):
    """POST the language switch: remember the choice in a cookie, go back to the page."""

    @public
    def post(self) -> None:
        code = self.get_body_argument("locale", "")
        if cookie_locale(code) is None:
            raise UserError(400, "unknown language")
        self.set_cookie(LOCALE_COOKIE, code, expires_days=365, samesite="Lax")
        self.redirect(same_site_path(self.get_body_argument("next", "/")))


class VendorHandler(tornado.web.StaticFileHandler):
    """Front-end libraries from node_modules, one dist folder per route, nothing else."""

    @public
    async def get(self, path: str, include_body: bool = True) -> None:
        await super().get(path, include_body)

    @public
    async def head(self, path: str) -> None:
        await super().head(path)

    def set_extra_headers(self, path: str) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")

    def get_content_type(self) -> str:
        if self.absolute_path.endswith((".js", ".mjs")):
            return "text/javascript; charset=utf-8"
        if self.absolute_path.endswith(".map"):
            return "application/json"
        return super().get_content_type()


def vendor_routes() -> list[tuple]:
    return [(rf"/vendor/{name}/(.*)", VendorHandler, {"path": str(path)})
            for name, path in VENDOR_DIRS.items()]
