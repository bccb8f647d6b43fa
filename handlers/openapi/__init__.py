"""Ferry's OpenAPI 3.1 document (`/api/openapi.json`) and its reference page (`/api/docs`,
Swagger UI served from node_modules, never a CDN)."""

from __future__ import annotations

import functools

from handlers.access import public
from handlers.base import CSP, ApiHandler, dumps
from handlers.openapi import paths_core, paths_live
from handlers.openapi.schemas import SCHEMAS
from handlers.openapi.spec import PARAMETERS
from handlers.pages import PageHandler

TAGS = ["team", "hosts", "projects", "releases", "events", "chat", "wall", "audit",
        "webhooks", "notifications", "operations"]


@functools.cache
def document() -> str:
    """The document as JSON text (built once: it describes the code, not the data)."""
    return dumps({
        "openapi": "3.1.0",
        "info": {"title": "Ferry", "version": "1",
                 "description": "Ship a git ref to a fleet of SSH hosts, live. Send a session "
                                "or API token as `Authorization: Bearer <token>`; errors are "
                                "`{message, reason}`."},
        "tags": [{"name": tag} for tag in TAGS],
        "security": [{"bearer": []}, {"session": []}],
        "paths": {**paths_core.PATHS, **paths_live.PATHS},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A session token (POST /api/session) or an API "
                                          "token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "ferry_session"}},
            "parameters": PARAMETERS,
            "schemas": SCHEMAS,
        },
    })


class OpenApiHandler(ApiHandler):
    """GET /api/openapi.json."""

    async def prepare(self) -> None:
        """Public and the same for everyone: nothing to resolve."""

    @public
    def get(self) -> None:
        self.finish(document())


class ApiDocsPage(PageHandler):
    """GET /api/docs: the reference, rendered by Swagger UI from node_modules."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        # Swagger UI sets style attributes; scripts stay 'self' only.
        self.set_header("Content-Security-Policy",
                        CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"))

    @public       # like the document it shows: it describes the API, not anyone's data
    def get(self) -> None:
        self.render_page("api_docs.html")
