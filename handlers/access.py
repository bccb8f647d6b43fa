"""Every verb is marked @public, @requires(role), @on_project(action) or
@on_release(action); the app refuses to start otherwise.

`requires` checks the global role only (hosts, users, creating projects, and lists that
each service filters by what the user may see). A verb that acts on one project says so
with `on_project` (the project's name is the route's first argument) or `on_release`
(the release id is), and the check is the one of services/team/access.py: a project the
user has no role on answers 404, as if it did not exist; one they see but may not act on
answers 403.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import tornado.web

from services.releases.service import parse_release_id
from services.team.access import ACTIONS
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


def _scoped(action: str, resolve: Callable) -> Callable[[Callable], Callable]:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        async def wrapper(self, scope: str, *args, **kwargs):
            if self.current_user is None:
                return self.deny_anonymous()
            await resolve(self, scope, action)
            result = method(self, scope, *args, **kwargs)
            if result is not None and hasattr(result, "__await__"):
                result = await result
            return result

        setattr(wrapper, ACCESS_ATTR, f"{resolve.__name__}:{action}")
        return wrapper

    return decorate


async def _project(handler, name: str, action: str) -> None:
    handler.project_role = await handler.services.access.require(
        handler.current_user, name, action)


async def _release(handler, release_id: str, action: str) -> None:
    handler.release_project, handler.project_role = await handler.services.access.release_role(
        handler.current_user, parse_release_id(release_id), action)


def on_project(action: str) -> Callable[[Callable], Callable]:
    """Let the verb run only for a signed-in user who may do `action` on the project named
    by the route's first argument (sets `self.project_role`)."""
    return _scoped(action, _project)


def on_release(action: str) -> Callable[[Callable], Callable]:
    """Let the verb run only for a signed-in user who may do `action` on the project of
    the release whose id is the route's first argument (sets `self.release_project` and
    `self.project_role`)."""
    return _scoped(action, _release)


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
                    f"{handler.__name__}.{verb} has no @public, @requires(role), "
                    "@on_project(action) or @on_release(action) mark")
