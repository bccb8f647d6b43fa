"""BaseHandler: the user, the services, capped JSON bodies and the two error renderers."""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
from datetime import datetime
from http import HTTPStatus
from typing import Any

import tornado.locale
import tornado.web

from handlers.access import UserError, public
from handlers.locale import LOCALE_COOKIE, cookie_locale
from services import Services
from services.errors import FerryError
from services.team.audit import Actor
from services.team.auth import User
from services.team.credentials import BEARER, SESSION, Credential

log = logging.getLogger("ferry.web")
SESSION_COOKIE = "ferry_session"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


INT64 = 2**63
# Characters no redirect target may hold: controls and whitespace (browsers drop tabs and
# newlines, so "/\t/evil" would become "//evil"), and the backslash browsers read as "/".
_UNSAFE_IN_PATH = re.compile(r"[\x00-\x20\x7f-\xa0\\\u1680\u2000-\u200f\u2028-\u202f"
                             r"\u205f-\u206f\u3000\ufeff]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def same_site_path(target: str | None) -> str:
    """`target` when it is a path on this site, else "/": the one safe-redirect function.

    Only a relative path that starts with exactly one "/", with no backslash, control
    character or space, is kept; anything else (absolute URLs, "//host", "/\\host",
    CR/LF that would split the Location header) goes to "/". Non-ASCII characters are
    percent-encoded, so the header stays ASCII."""
    if (not isinstance(target, str) or not target.startswith("/") or target.startswith("//")
            or len(target) > 2048 or _UNSAFE_IN_PATH.search(target)):
        return "/"
    return _NON_ASCII.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode(
        "utf-8", "replace")), target)


class BadJson(ValueError):
    """A request body or message that is not JSON we take; the message says why."""


def _object(pairs: list[tuple[str, Any]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise BadJson(f"duplicate key {key[:40]!r}")
        result[key] = value
    return result


def _integer(text: str) -> int:
    value = int(text) if len(text) <= 20 else INT64
    if not -INT64 <= value < INT64:
        raise BadJson(f"number {text[:24]}… is out of range (64-bit integers only)")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson(f"number {text[:24]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise BadJson(f"{name} is not a JSON number")


def parse_json(data: bytes | str, max_depth: int) -> Any:
    """The one JSON parser for request bodies and WebSocket messages: strict UTF-8, no
    duplicate keys, no NaN/Infinity, integers within int64, strings encodable as UTF-8
    (no lone surrogates), at most `max_depth` levels of nesting. Raises BadJson."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, object_pairs_hook=_object, parse_int=_integer,
                           parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise BadJson(f"nested more than {max_depth} levels deep") from None
    except BadJson:
        raise
    except ValueError as error:      # includes UnicodeDecodeError and JSONDecodeError
        raise BadJson(str(error)[:200]) from None
    _check_tree(value, max_depth)
    return value


def _check_tree(value: Any, max_depth: int) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                raise BadJson(f"nested more than {max_depth} levels deep")
            if isinstance(item, dict):
                for key in item:
                    _check_string(key)
                item = item.values()
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            _check_string(item)


def _check_string(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadJson("strings must be valid Unicode (no lone surrogates)") from None


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
        credential = self.credential()
        return await self.services.auth.resolve(credential) if credential else None

    def credential(self) -> Credential | None:
        """What this request presents: a bearer token, else a signed session cookie."""
        header = self.request.headers.get("Authorization", "")
        if header.startswith(("Bearer ", "token ")):
            self.token_auth = True
            return Credential.of(BEARER, header.split(" ", 1)[1].strip())
        session = self.get_signed_cookie(SESSION_COOKIE, max_age_days=31)
        return Credential.of(SESSION, session.decode()) if session else None

    def get_current_user(self) -> User | None:
        return getattr(self, "_user", None)

    def actor(self, via: str | None = None, name: str | None = None) -> Actor:
        """Who is acting in this request, for the audit log; `via` and `name` replace
        what the request says (a chat command, a sign-in before there is a user)."""
        user = self.current_user
        via = via or getattr(user, "via", None) or ("token" if self.token_auth else "page")
        name = name or (user.name if user else "anonymous")
        return Actor(name, self.client_address(), via)

    async def audit(self, action: str, target: str = "", *, project: str | None = None,
                    details: dict[str, Any] | None = None, via: str | None = None,
                    actor: str | None = None) -> None:
        """Append this request's action to the audit log (after it succeeded, before the
        answer). A database that refuses the entry does not fail the request (see
        services/team/audit.py)."""
        await self.services.audit.record(self.actor(via, actor), action, str(target),
                                         project=project, details=details)

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

    def client_address(self) -> str:
        """The client's IP address: the peer's, or the nearest X-Forwarded-For hop that is
        not a trusted proxy when the peer is one (settings.trusted_proxies). Anything
        else in X-Forwarded-For is ignored: a client could write any address there."""
        peer = self.request.remote_ip
        proxies = self.services.settings.trusted_proxies
        if peer not in proxies:
            return peer
        hops = self.request.headers.get("X-Forwarded-For", "").split(",")
        for hop in reversed([hop.strip() for hop in hops]):
            if hop in proxies:
                continue
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
        return peer

    def get_json_body(self) -> dict:
        """The request body as a JSON object; 4xx with a message when it is not one."""
        settings = self.services.settings
        if len(self.request.body) > settings.max_body_bytes:
            raise UserError(413, f"body larger than {settings.max_body_bytes} bytes")
        if not self.request.body:
            return {}
        media = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        # A browser can send a form cross-site but not a JSON body: from a page (cookie)
        # the type must say JSON. A script with a token (`curl -d`) may leave curl's
        # default type on, since nothing cross-site can carry its Authorization header.
        scripted = self.request.headers.get("Authorization", "").startswith("Bearer ")
        if media != "application/json" and not (
                scripted and media in ("", "application/x-www-form-urlencoded")):
            raise UserError(415, "send the body as JSON, with Content-Type: application/json")
        try:
            body = parse_json(self.request.body, settings.json_max_depth)
        except BadJson as error:
            raise UserError(400, f"body is not valid JSON: {error}") from None
        if not isinstance(body, dict):
            raise UserError(400, "body must be a JSON object")
        return body

    def _handle_request_exception(self, error: BaseException) -> None:
        # Domain errors carry their own status and a message meant for the user.
        if isinstance(error, FerryError):
            error = UserError(error.status, str(error), getattr(error, "retry_after", None))
        super()._handle_request_exception(error)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # A user's mistake is answered with its message; the request log line is enough.
        if isinstance(value, (FerryError, UserError)):
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self._retry_after(kwargs)
        self.render("error.html", status_code=status_code, message=self._error_message(
            status_code, kwargs))

    def _retry_after(self, kwargs: dict) -> int | None:
        """Set Retry-After when the error says how long to wait; return the seconds."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        seconds = getattr(exc, "retry_after", None)
        if seconds is not None:
            self.set_header("Retry-After", str(seconds))
        return seconds

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

    def query_number(self, name: str, default: str, kind: type, low: float,
                     high: float) -> Any:
        """A numeric query argument (`kind` int or float) within [low, high]; 400 else.
        ASCII only: int() and float() also take other scripts' digits."""
        text = self.get_query_argument(name, default)
        try:
            if not text.isascii():
                raise ValueError(text)
            value = kind(text)
        except ValueError:
            raise UserError(400, f"{name} must be a number, not {text[:20]!r}") from None
        if value != value or not low <= value <= high:     # NaN fails the first test
            raise UserError(400, f"{name} must be between {low:g} and {high:g}")
        return value

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        try:
            reason = HTTPStatus(status_code).phrase
        except ValueError:
            reason = "error"
        body = {"message": self._error_message(status_code, kwargs), "reason": reason}
        retry_after = self._retry_after(kwargs)
        if retry_after is not None:
            body["retry_after"] = retry_after
        self.finish(dumps(body))


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
