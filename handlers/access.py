"""Every verb is marked @public or @requires(role); the app refuses to start otherwise."""

from __future__ import annotations

import functools
from collections.abc import Callable

import tornado.web

from services.team.auth import ROLES


class UserError(tornado.web.HTTPError):
    """An HTTP error whose message is for the user (kept out of the status line);
    `retry_after` (seconds) becomes a Retry-After header and a JSON field."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(status)
        self.message = message
        self.retry_after = retry_after

VERBS = ("get", "head", "post", "put", "patch", "delete", "options")
ACCESS_ATTR = "__ferry_access__"


def public(method: Callable) -> Callable:
    """Mark a verb as open to anyone, signed in or not."""
    setattr(method, ACCESS_ATTR, "public")
    return method


def requires(role: str) -> Callable[[Callable], Callable]:
    """Let the verb run only for a signed-in user whose role is at least `role`."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        async def wrapper(self, *args, **kwargs):
            user = self.current_user
            if user is None:
                return self.deny_anonymous()
            if not user.can(role):
                raise UserError(403, f"requires the {role} role")
            result = method(self, *args, **kwargs)
            if result is not None and hasattr(result, "__await__"):
                result = await result
            return result

        setattr(wrapper, ACCESS_ATTR, role)
        return wrapper

    return decorate


def check_routes(routes: list) -> None:
    """Raise at start-up when a routed handler has a verb with no access mark."""
    for route in routes:
        handler = route[1]
        for verb in VERBS:
            method = getattr(handler, verb, None)
            if method is None or not callable(method):
                continue
            if getattr(tornado.web.RequestHandler, verb, None) is method:
                continue
            if getattr(handler, "__module__", "").startswith("tornado."):
                continue
            if not hasattr(method, ACCESS_ATTR):
                raise RuntimeError(
                    f"{handler.__name__}.{verb} has no @public or @requires(role) mark")
