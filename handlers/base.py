"""BaseHandler: the user, the services, capped JSON bodies and the two error renderers."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from http import HTTPStatus
from typing import Any

import tornado.locale
import tornado.web

from handlers.access import UserError, public
from handlers.locale import LOCALE_COOKIE, cookie_locale
from services import Services
from services.errors import FerryError
from services.team.auth import User

log = logging.getLogger("ferry.web")
SESSION_COOKIE = "ferry_session"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


def same_site_path(target: str | None) -> str:
    """`target` when it is a path on this site, else "/" (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, default=json_default, separators=(",", ":"))


class BaseHandler(tornado.web.RequestHandler):
    """Resolves the user once per request and gives typed access to the services."""

    token_auth = False

    def set_default_headers(self) -> None:
        """Every HTML page: a strict CSP (no inline script or style), no framing."""
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Cache-Control", "no-store")

    def get_user_locale(self) -> tornado.locale.Locale | None:
        return cookie_locale(self.get_cookie(LOCALE_COOKIE))

    @property
    def services(self) -> Services:
        return self.settings["services"]

    async def prepare(self) -> None:
        self._user = await self._resolve_user()

    async def _resolve_user(self) -> User | None:
        header = self.request.headers.get("Authorization", "")
        if header.startswith(("Bearer ", "token ")):
            self.token_auth = True
            return await self.services.auth.token_user(header.split(" ", 1)[1].strip())
        session = self.get_signed_cookie(SESSION_COOKIE, max_age_days=31)
        if session:
            return await self.services.auth.session_user(session.decode())
        return None

    def get_current_user(self) -> User | None:
        return getattr(self, "_user", None)

    def check_xsrf_cookie(self) -> None:
        # A bearer token cannot be sent by a third-party page, so it needs no XSRF token.
        # (Tornado checks XSRF before prepare(), so read the header here.)
        if not self.request.headers.get("Authorization", "").startswith(("Bearer ", "token ")):
            super().check_xsrf_cookie()

    def deny_anonymous(self) -> None:
        if self.request.method in ("GET", "HEAD"):
            self.redirect(self.get_login_url() + "?next=" + tornado.escape.url_escape(
                self.request.uri or "/"))
            return
        raise UserError(401, "sign in first")

    def get_json_body(self) -> dict:
        """The request body as a JSON object; 400 with a message when it is not one."""
        limit = self.services.settings.max_body_bytes
        if len(self.request.body) > limit:
            raise UserError(413, f"body larger than {limit} bytes")
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise UserError(400, f"body is not valid JSON: {error}") from None
        if not isinstance(body, dict):
            raise UserError(400, "body must be a JSON object")
        return body

    def _handle_request_exception(self, error: BaseException) -> None:
        # Domain errors carry their own status and a message meant for the user.
        if isinstance(error, FerryError):
            error = UserError(error.status, str(error))
        super()._handle_request_exception(error)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # A user's mistake is answered with its message; the request log line is enough.
        if isinstance(value, (FerryError, UserError)):
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.render("error.html", status_code=status_code, message=self._error_message(
            status_code, kwargs))

    def _error_message(self, status_code: int, kwargs: dict) -> str:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, FerryError):
            return str(exc)
        if isinstance(exc, UserError):
            return exc.message
        if isinstance(exc, tornado.web.HTTPError) and exc.log_message:
            return exc.log_message % exc.args if exc.args else exc.log_message
        try:
            return HTTPStatus(status_code).phrase
        except ValueError:
            return "error"


class ApiHandler(BaseHandler):
    """JSON in, JSON out; errors are {"message", "reason"} and never a traceback."""

    def deny_anonymous(self) -> None:
        raise UserError(401, "authentication required")

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        try:
            reason = HTTPStatus(status_code).phrase
        except ValueError:
            reason = "error"
        self.finish(dumps({"message": self._error_message(status_code, kwargs),
                           "reason": reason}))


class NotFoundHandler(BaseHandler):
    """The catch-all: JSON under /api/, the error page elsewhere."""

    @public
    def get(self, *args: Any) -> None:
        raise UserError(404, "no such page")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self.request.path.startswith("/api/"):
            ApiHandler.write_error(self, status_code, **kwargs)
        else:
            super().write_error(status_code, **kwargs)

    post = put = patch = delete = get
