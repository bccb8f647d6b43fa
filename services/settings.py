"""Frozen settings: every path, limit and timeout Ferry uses, in one place."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Configuration for one Ferry instance; built once by server.py or a test."""

    data_dir: Path = Path("ferry-data")
    address: str = "127.0.0.1"
    port: int = 8700
    mongo_url: str | None = None
    db_name: str = "ferry"
    demo: bool = False
    instance_id: str = "ferry"
    # True when this process owns its database alone (the embedded one): at start-up,
    # releases still marked active were left by a dead process and need no lease expiry.
    exclusive_db: bool = False
    # Extra origins allowed to open /ws besides the server's own.
    allowed_origins: tuple[str, ...] = ()
    cookie_secret: str = ""
    xsrf_cookies: bool = True

    # HTTP limits
    max_body_bytes: int = 1024 * 1024
    max_query_argument_bytes: int = 4096
    ws_max_message_bytes: int = 64 * 1024
    ws_ping_interval_s: float = 20.0
    ws_ping_timeout_s: float = 20.0   # Tornado: at most the ping interval
    session_ttl_s: int = 7 * 24 * 3600

    # Worker threads for git, tar and hashing
    executor_threads: int = 4

    # git
    git_timeout_s: float = 300.0
    git_low_speed_limit_bps: int = 1000
    git_low_speed_time_s: int = 30
    git_allow_file_urls: bool = False
    git_commits_limit: int = 50
    git_refs_limit: int = 500
    git_error_max_chars: int = 500
    # artifacts (tar.gz of the built tree)
    artifact_gzip_level: int = 6

    # SSH
    ssh_connect_timeout_s: float = 10.0
    ssh_login_timeout_s: float = 10.0
    ssh_keepalive_interval_s: float = 15.0
    ssh_keepalive_count_max: int = 3
    ssh_command_timeout_s: float = 300.0
    ssh_line_max_bytes: int = 4096
    ssh_step_output_max_bytes: int = 1024 * 1024
    ssh_upload_chunk_bytes: int = 64 * 1024
    ssh_keyscan_timeout_s: float = 10.0
    ssh_client_keys: tuple[str, ...] = ()

    # Pipeline
    hook_timeout_s: float = 600.0
    local_hook_timeout_s: float = 900.0
    verify_retries: int = 5
    verify_interval_s: float = 2.0
    verify_timeout_s: float = 10.0
    default_keep_releases: int = 5
    max_hosts_per_release: int = 5000
    artifact_max_bytes: int = 2 * 1024**3

    # Leases (deploy lock, release ownership)
    lease_ttl_s: float = 30.0
    lease_renew_s: float = 10.0

    # Events
    event_flush_interval_s: float = 0.1
    event_flush_max_events: int = 500
    event_memory_per_topic: int = 5000
    event_page_max: int = 2000
    fanout_tick_s: float = 0.05
    client_buffer_max_events: int = 20000
    longpoll_max_wait_s: float = 30.0
    longpoll_max_waiters: int = 10000
    event_topic_max_chars: int = 200
    event_max_topics_in_memory: int = 1000
    event_topic_idle_s: float = 120.0
    event_flush_retry_max_s: float = 5.0
    event_shared_write_attempts: int = 20
    ws_max_topics: int = 64
    log_flush_interval_s: float = 0.25

    # Shutdown
    shutdown_grace_s: float = 10.0

    extra: dict = field(default_factory=dict, compare=False)

    @property
    def repos_dir(self) -> Path:
        return self.data_dir / "repos"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def known_hosts_path(self) -> Path:
        return self.data_dir / "known_hosts"

    @property
    def embedded_db_dir(self) -> Path:
        return self.data_dir / "db"

    def replace(self, **changes) -> Settings:
        """A copy with some fields changed (tests and server.py use it)."""
        return dataclasses.replace(self, **changes)
