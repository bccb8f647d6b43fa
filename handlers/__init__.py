"""ROUTES: the one routes table — Ferry's table of contents."""

from __future__ import annotations

from handlers import auth, events, hosts, pages, projects, releases, ws
from handlers.base import NotFoundHandler

ID = r"(\d+)"
NAME = r"([A-Za-z0-9_.-]+)"

AUTH_ROUTES = [
    (r"/login", auth.LoginHandler),
    (r"/logout", auth.LogoutHandler),
    (r"/api/me", auth.MeHandler),
    (r"/api/tokens", auth.TokensHandler),
    (r"/api/session", auth.SessionApiHandler),
]

HOST_ROUTES = [
    (r"/api/hosts", hosts.HostsHandler),
    (rf"/api/hosts/{NAME}", hosts.HostHandler),
    (rf"/api/hosts/{NAME}/scan", hosts.HostScanHandler),
    (rf"/api/hosts/{NAME}/trust", hosts.HostTrustHandler),
]

PROJECT_ROUTES = [
    (r"/api/projects", projects.ProjectsHandler),
    (rf"/api/projects/{NAME}", projects.ProjectHandler),
    (rf"/api/projects/{NAME}/refs", projects.ProjectRefsHandler),
    (rf"/api/projects/{NAME}/commits", projects.ProjectCommitsHandler),
]

RELEASE_ROUTES = [
    (r"/api/releases", releases.ReleasesHandler),
    (rf"/api/releases/{ID}", releases.ReleaseHandler),
    (rf"/api/releases/{ID}/(cancel|promote|retry)", releases.ReleaseActionHandler),
    (rf"/api/releases/{ID}/rollback", releases.ReleaseRollbackHandler),
    (rf"/api/releases/{ID}/hosts/{NAME}/log", releases.HostLogHandler),
]

EVENT_ROUTES = [
    (r"/ws", ws.EventSocketHandler),
    (r"/api/events", events.EventsHandler),
]

PAGE_ROUTES = [
    (r"/", pages.DashboardPage),
    (r"/hosts", pages.HostsPage),
    (r"/projects", pages.ProjectsPage),
    (rf"/projects/{NAME}", pages.ProjectPage),
    (rf"/projects/{NAME}/release", pages.NewReleasePage),
    (rf"/releases/{ID}", pages.ReleasePage),
    (r"/locale", pages.LocaleHandler),
    *pages.vendor_routes(),
]

ROUTES = [
    *PAGE_ROUTES,
    *AUTH_ROUTES,
    *HOST_ROUTES,
    *PROJECT_ROUTES,
    *RELEASE_ROUTES,
    *EVENT_ROUTES,
    (r".*", NotFoundHandler),
]
