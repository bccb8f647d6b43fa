"""Services: builds and owns every domain service; opened and closed in a fixed order."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from services.settings import Settings
from services.store import Store

log = logging.getLogger("ferry")


class Services:
    """The one object that wires Ferry's services together (no module-level state)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        from services.build.artifacts import ArtifactService
        from services.events.bus import EventBus
        from services.git.mirrors import GitService
        from services.registry.hosts import HostService
        from services.registry.projects import ProjectService
        from services.releases.service import ReleaseService
        from services.ssh.client import SshService
        from services.team.auth import AuthService

        self.settings = settings
        self.store = store
        self.executor = ThreadPoolExecutor(settings.executor_threads, thread_name_prefix="ferry-io")
        self.auth = AuthService(store, self.executor, settings.session_ttl_s)
        self.events = EventBus(settings, store)
        self.ssh = SshService(settings)
        self.git = GitService(settings, self.executor)
        self.artifacts = ArtifactService(settings, self.executor)
        self.hosts = HostService(settings, store, self.ssh)
        self.projects = ProjectService(settings, store, self.git)
        self.releases = ReleaseService(self)

    async def open(self) -> None:
        """Indexes, the event bus, then recovery of releases a dead process left running."""
        for directory in (self.settings.data_dir, self.settings.repos_dir,
                          self.settings.artifacts_dir, self.settings.work_dir):
            directory.mkdir(parents=True, exist_ok=True)
        await self.store.ensure_indexes()
        await self.events.open()
        await self.releases.open()

    async def close(self) -> None:
        """Stop scheduling, let releases reach a safe point, flush events, close pools."""
        await self.releases.close()
        await self.events.close()
        self.executor.shutdown(wait=True, cancel_futures=True)
        await self.store.close()

    async def __aenter__(self) -> Services:
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
