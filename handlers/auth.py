"""Sign in and out (session cookie), who am I, and API tokens.

Both ways to sign in (the form and POST /api/session) go through AuthService.sign_in,
which the sign-in throttle guards: 429 with Retry-After once an account or an address
failed too often.
"""

from __future__ import annotations

from handlers.access import UserError, public, requires
from handlers.base import SESSION_COOKIE, ApiHandler, BaseHandler, same_site_path
from services.team.throttle import Throttled


class LoginHandler(BaseHandler):
    @public
    def get(self) -> None:
        self.render("login.html", error=None, next_url=self._next_url())

    @public
    async def post(self) -> None:
        name = self.get_body_argument("name", "")[:64]
        password = self.get_body_argument("password", "")[:1024]
        try:
            user = await self.services.auth.sign_in(name, password, self.client_address())
        except Throttled as error:
            self.set_status(429)
            self.set_header("Retry-After", str(error.retry_after))
            self.render("login.html", error=str(error), next_url=self._next_url())
            return
        if user is None:
            await self.audit("auth.signin_failed", name, actor="anonymous", via="page")
            self.set_status(403)
            self.render("login.html", error="wrong name or password", next_url=self._next_url())
            return
        token = await self.services.auth.create_session(user)
        await self.audit("auth.signin", user.name, actor=user.name, via="page")
        self.set_signed_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax",
                               expires_days=self.services.settings.session_ttl_s / 86400)
        self.redirect(self._next_url())

    def _next_url(self) -> str:
        return same_site_path(self.get_argument("next", "/"))


class LogoutHandler(BaseHandler):
    @public
    async def post(self) -> None:
        session = self.get_signed_cookie(SESSION_COOKIE)
        if session:
            await self.services.auth.end_session(session.decode())
            if self.current_user is not None:
                await self.audit("auth.signout", self.current_user.name)
        self.clear_cookie(SESSION_COOKIE)
        self.redirect("/login")


class MeHandler(ApiHandler):
    @requires("member")
    async def get(self) -> None:
        """Who I am, with my role on each project I am a member of."""
        user = self.current_user
        self.write_json({**user.to_json(),
                         "projects": await self.services.access.roles_of(user)})


class TokensHandler(ApiHandler):
    """My API tokens: list them (never their secrets), or create one (its secret is in
    this answer only)."""

    @requires("member")
    async def get(self) -> None:
        self.write_json({"tokens": await self.services.auth.tokens.list(
            self.current_user.name)})

    @requires("member")
    async def post(self) -> None:
        token = await self.services.auth.tokens.issue(self.current_user.name,
                                                      self.get_json_body())
        await self.audit("token.create", token["name"] or str(token["id"]), details={
            "id": token["id"], "name": token["name"], "expires_at": token["expires_at"]})
        self.set_header("Location", f"/api/tokens/{token['id']}")
        self.write_json(token, status=201)


class TokenHandler(ApiHandler):
    """DELETE one of my tokens: refused from the next request on."""

    @requires("member")
    async def delete(self, token_id: str) -> None:
        if len(token_id) > 18:
            raise UserError(404, f"no token {token_id[:20]}")
        token = await self.services.auth.tokens.revoke(self.current_user.name, int(token_id))
        await self.audit("token.revoke", token["name"] or str(token["id"]),
                         details={"id": token["id"], "name": token["name"]})
        self.set_status(204)
        self.finish()


class SessionApiHandler(ApiHandler):
    """POST {"name","password"} → an API token, for scripts that only know a password."""

    @public
    async def post(self) -> None:
        body = self.get_json_body()
        name, password = body.get("name"), body.get("password")
        if not isinstance(name, str) or not isinstance(password, str):
            raise UserError(400, "name and password are required strings")
        user = await self.services.auth.sign_in(name[:64], password, self.client_address())
        if user is None:
            await self.audit("auth.signin_failed", name[:64], actor="anonymous", via="api")
            raise UserError(403, "wrong name or password")
        token = await self.services.auth.create_token(user, "password login")
        await self.audit("auth.signin", user.name, actor=user.name, via="api",
                         details={"token": "password login"})
        self.write_json({"token": token, "user": user.name}, status=201)

    def check_xsrf_cookie(self) -> None:
        # Password in the body, no cookie used: nothing for a cross-site form to ride on.
        pass
