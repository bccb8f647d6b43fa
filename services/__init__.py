"""Services: builds and owns every domain service; opened and closed in a fixed order."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from pymongo.errors import PyMongoError

from services.settings import Settings
from services.store import Store

log = logging.getLogger("ferry")


class Services:
    """The one object that wires Ferry's services together (no module-level state)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        from services.build.artifacts import ArtifactService
        from services.chat import ChatService
        from services.events.bus import EventBus
        from services.git.mirrors import GitService
        from services.metrics import Metrics
        from services.notify import NotificationService
        from services.registry.hosts import HostService
        from services.registry.projects import ProjectService
        from services.releases.context import Engine
        from services.releases.gates import GateService
        from services.releases.history import ReleaseHistory
        from services.releases.logexport import LogExport
        from services.releases.service import ReleaseService
        from services.ssh.client import SshService
        from services.team.access import Access
        from services.team.audit import AuditLog
        from services.team.auth import AuthService
        from services.team.credentials import SocketCredentials
        from services.team.throttle import SigninThrottle
        from services.wall import WallService
        from services.webhooks import WebhookService

        self.settings = settings
        self.store = store
        # Three pools, so one kind of blocking work cannot starve another: packaging (tar,
        # sha256, rmtree), git (stalled remotes wait here, bounded by git_fetch_*), and
        # password hashing (sign-in stays quick whatever git and packaging are doing).
        self.executor = ThreadPoolExecutor(settings.executor_threads, thread_name_prefix="ferry-io")
        self.git_executor = ThreadPoolExecutor(settings.git_threads, thread_name_prefix="ferry-git")
        self.auth_executor = ThreadPoolExecutor(settings.auth_threads,
                                                thread_name_prefix="ferry-auth")
        self.audit = AuditLog(store, settings)
        self.auth = AuthService(store, self.auth_executor, settings,
                                SigninThrottle(settings))
        # Open sockets' credentials, checked again all together every ws_auth_recheck_s.
        self.socket_credentials = SocketCredentials(
            lambda credentials: self.auth.resolve_many(credentials, touch=False),
            settings.ws_auth_recheck_s)
        self.access = Access(store)     # who may do what on which project
        self.events = EventBus(settings, store)
        self.ssh = SshService(settings)
        self.git = GitService(settings, self.git_executor)
        self.artifacts = ArtifactService(settings, self.executor)
        self.hosts = HostService(settings, store, self.ssh, self.executor)
        self.projects = ProjectService(settings, store, self.git)
        self.releases = ReleaseService(
            Engine(settings, store, self.git, self.ssh, self.artifacts, self.executor),
            self.events, self.projects, self.hosts, access=self.access)
        self.log_export = LogExport(self.releases, self.executor)
        self.history = ReleaseHistory(store, settings, self.git, self.projects)
        # Approvals, freeze windows and start times, before a release reaches the engine.
        self.gates = GateService(settings, store, self.events, self.releases, self.projects,
                                 self.git, self.audit, self.access.project_role)
        self.metrics = Metrics(self.events, lambda: dict(self.ssh.connect_failures))
        self.chat = ChatService(settings, store, self.events, self.releases, self.access,
                                self.gates.cancel, self.audit)
        self.wall = WallService(settings, store, self.events,
                                owns=lambda release_id: release_id in self.releases.runs,
                                vote_of=self._vote_of)
        self.hosts.watch(self.wall.host_changed)      # the wall's registry, kept current
        self.notify = NotificationService(settings, store, self.events)
        self.webhooks = WebhookService(settings, store, self.gates.create,
                                       self.projects.exists)

    async def open(self) -> None:
        """Indexes, the event bus, then recovery of releases a dead process left running."""
        for directory in (self.settings.data_dir, self.settings.repos_dir,
                          self.settings.artifacts_dir, self.settings.work_dir):
            directory.mkdir(parents=True, exist_ok=True)
        await self.store.ensure_indexes()
        await self.events.open()
        await self.releases.open()
        await self.gates.open()
        await self.chat.open()
        await self.wall.open()
        await self.webhooks.open()
        await self.notify.open()

    async def close(self) -> None:
        """Stop scheduling, let releases reach a safe point, flush events, close pools."""
        await self.notify.close()
        await self.socket_credentials.close()
        await self.wall.close()
        await self.chat.close()
        await self.gates.close()
        await self.releases.close()
        await self.events.close()
        for pool in (self.executor, self.git_executor, self.auth_executor):
            pool.shutdown(wait=True, cancel_futures=True)
        self.ssh.close()
        await self.store.close()

    async def readiness(self) -> str | None:
        """Why this instance should not take traffic now, or None when it is ready."""
        if self.releases.stopping:
            return "shutting down"
        try:
            await asyncio.wait_for(self.store.db.command("ping"),
                                   self.settings.readyz_db_timeout_s)
        except TimeoutError:
            return "the database did not answer in time"
        except PyMongoError as error:
            return f"the database is unreachable: {type(error).__name__}"
        return None

    async def _vote_of(self, release_id: int) -> dict | None:
        """A release's current vote for the wall, or None when it has none."""
        from services.errors import NotFound

        try:
            return await self.chat.votes.get(release_id)
        except NotFound:
            return None

    async def __aenter__(self) -> Services:
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
