"""ROUTES: the one routes table — Ferry's table of contents."""

from __future__ import annotations

from handlers import auth, chat, events, hosts, pages, projects, releases, votes, wall, ws
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
    (rf"/api/projects/{NAME}/refresh", projects.ProjectRefreshHandler),
    (rf"/api/projects/{NAME}/commits", projects.ProjectCommitsHandler),
]

RELEASE_ROUTES = [
    (r"/api/releases", releases.ReleasesHandler),
    (rf"/api/releases/{ID}", releases.ReleaseHandler),
    (rf"/api/releases/{ID}/(cancel|promote|retry)", releases.ReleaseActionHandler),
    (rf"/api/releases/{ID}/rollback", releases.ReleaseRollbackHandler),
    (rf"/api/releases/{ID}/hosts/{NAME}/log", releases.HostLogHandler),
]

CHAT_ROUTES = [
    # Any room name reaches the handler, which answers 404 for names no room can have.
    (r"/api/chat/([^/]{1,200})/messages", chat.ChatMessagesHandler),
    (rf"/api/releases/{ID}/vote", votes.ReleaseVoteHandler),
]

EVENT_ROUTES = [
    (r"/ws", ws.EventSocketHandler),
    (r"/api/events", events.EventsHandler),
]

WALL_ROUTES = [
    (r"/wall", wall.WallPage),
    (r"/api/wall", wall.WallApiHandler),
    (r"/api/wall/events", wall.WallEventsHandler),
    (r"/wall/ws", wall.WallSocketHandler),
    (r"/api/wall/links", wall.WallLinksHandler),
    (r"/api/wall/links/(\d+)", wall.WallLinkHandler),
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
    *CHAT_ROUTES,
    *EVENT_ROUTES,
    *WALL_ROUTES,
    (r".*", NotFoundHandler),
]
