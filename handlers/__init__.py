"""ROUTES: the one routes table — Ferry's table of contents."""

from __future__ import annotations

from handlers import (
    auth,
    chat,
    events,
    health,
    hosts,
    notify,
    pages,
    projects,
    releases,
    team,
    votes,
    wall,
    webhooks,
    ws,
)
from handlers.audit import AuditApiHandler, AuditPage
from handlers.base import NotFoundHandler
from handlers.gates import ReleaseApprovalHandler, ReleaseGateHandler, WaitingReleasesHandler
from handlers.openapi import ApiDocsPage, OpenApiHandler
from handlers.vote_screen import (
    VoteScreenApiHandler,
    VoteScreenEventsHandler,
    VoteScreenPage,
    VoteScreenSocketHandler,
)

ID = r"(\d+)"
NAME = r"([A-Za-z0-9_.-]+)"

AUTH_ROUTES = [
    (r"/login", auth.LoginHandler),
    (r"/logout", auth.LogoutHandler),
    (r"/api/me", auth.MeHandler),
    (r"/api/tokens", auth.TokensHandler),
    (r"/api/tokens/(\d+)", auth.TokenHandler),
    (r"/api/session", auth.SessionApiHandler),
]

TEAM_ROUTES = [
    (r"/users", team.UsersPage),
    (r"/tokens", team.TokensPage),
    (r"/api/users", team.UsersHandler),
    (rf"/api/users/{NAME}", team.UserHandler),
]

HOST_ROUTES = [
    (r"/api/hosts", hosts.HostsHandler),
    (rf"/api/hosts/{NAME}", hosts.HostHandler),
    (rf"/api/hosts/{NAME}/scan", hosts.HostScanHandler),
    (rf"/api/hosts/{NAME}/trust", hosts.HostTrustHandler),
    (rf"/api/hosts/{NAME}/releases", hosts.HostReleasesHandler),
]

PROJECT_ROUTES = [
    (r"/api/projects", projects.ProjectsHandler),
    (rf"/api/projects/{NAME}", projects.ProjectHandler),
    (rf"/api/projects/{NAME}/refs", projects.ProjectRefsHandler),
    (rf"/api/projects/{NAME}/refresh", projects.ProjectRefreshHandler),
    (rf"/api/projects/{NAME}/commits", projects.ProjectCommitsHandler),
    (rf"/api/projects/{NAME}/members", team.ProjectMembersHandler),
    (rf"/api/projects/{NAME}/members/{NAME}", team.ProjectMemberHandler),
]

RELEASE_ROUTES = [
    (r"/api/releases", releases.ReleasesHandler),
    (rf"/api/releases/{ID}", releases.ReleaseHandler),
    (rf"/api/releases/{ID}/(cancel|promote|retry)", releases.ReleaseActionHandler),
    (rf"/api/releases/{ID}/rollback", releases.ReleaseRollbackHandler),
    (rf"/api/releases/{ID}/hosts/{NAME}/log", releases.HostLogHandler),
    (rf"/api/releases/{ID}/logs", releases.ReleaseLogsHandler),
    (rf"/api/releases/{ID}/commits", releases.ReleaseCommitsHandler),
    (r"/api/releases/waiting", WaitingReleasesHandler),
    (rf"/api/releases/{ID}/(approve|reject|start)", ReleaseGateHandler),
    (rf"/api/releases/{ID}/approval", ReleaseApprovalHandler),
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

VOTE_SCREEN_ROUTES = [   # the big-screen vote page: a user or a wall link
    (rf"/releases/{ID}/vote", VoteScreenPage),
    (rf"/releases/{ID}/vote/ws", VoteScreenSocketHandler),
    (rf"/api/releases/{ID}/vote/screen", VoteScreenApiHandler),
    (rf"/api/releases/{ID}/vote/events", VoteScreenEventsHandler),
]

WEBHOOK_ROUTES = [
    (rf"/hooks/([a-z]{{1,20}})/{NAME}", webhooks.WebhookHandler),
    (rf"/api/projects/{NAME}/webhook", webhooks.ProjectWebhookHandler),
]

CHANNEL = r"([0-9a-f]{24})"
NOTIFY_ROUTES = [
    (rf"/api/projects/{NAME}/notifications", notify.ChannelsHandler),
    (rf"/api/projects/{NAME}/notifications/{CHANNEL}", notify.ChannelHandler),
    (rf"/api/projects/{NAME}/notifications/{CHANNEL}/test", notify.ChannelTestHandler),
    (rf"/api/projects/{NAME}/notifications/{CHANNEL}/deliveries", notify.ChannelLogHandler),
]

API_DOC_ROUTES = [
    (r"/api/openapi.json", OpenApiHandler),
    (r"/api/docs", ApiDocsPage),
]

HEALTH_ROUTES = [
    (r"/healthz", health.HealthzHandler),
    (r"/readyz", health.ReadyzHandler),
    (r"/metrics", health.MetricsHandler),
]

AUDIT_ROUTES = [   # admins only; read only (no verb edits or deletes an entry)
    (r"/audit", AuditPage),
    (r"/api/audit", AuditApiHandler),
]

PAGE_ROUTES = [
    (r"/", pages.DashboardPage),
    (r"/hosts", pages.HostsPage),
    (rf"/hosts/{NAME}", pages.HostPage),
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
    *TEAM_ROUTES,
    *HOST_ROUTES,
    *PROJECT_ROUTES,
    *RELEASE_ROUTES,
    *CHAT_ROUTES,
    *EVENT_ROUTES,
    *WALL_ROUTES,
    *VOTE_SCREEN_ROUTES,
    *HEALTH_ROUTES,
    *AUDIT_ROUTES,
    *WEBHOOK_ROUTES,
    *NOTIFY_ROUTES,
    *API_DOC_ROUTES,
    (r".*", NotFoundHandler),
]
