"""The audit log, for admins: `GET /api/audit` (filtered, paged newest first) and the
`/audit` page. Read only: no verb here, or anywhere, edits or deletes an entry
(PUT, PATCH, DELETE and POST on /api/audit answer 405)."""

from __future__ import annotations

from handlers.access import requires
from handlers.base import ApiHandler
from handlers.pages import PageHandler

FILTERS = ("actor", "project", "action", "since", "until", "before", "limit")


class AuditApiHandler(ApiHandler):
    """GET /api/audit?actor=&project=&action=&since=&until=&before=&limit="""

    @requires("admin")
    async def get(self) -> None:
        audit = self.services.audit
        query = audit.parse_query({name: self.get_query_argument(name, None)
                                   for name in FILTERS})
        self.write_json(await audit.page(query))


class AuditPage(PageHandler):
    """The log as a table; its filters live in the URL, so a view can be bookmarked."""

    @requires("admin")
    def get(self) -> None:
        self.render_page("audit.html", filters={
            name: self.get_query_argument(name, "")[:200] for name in ("actor", "project",
                                                                        "action")})
