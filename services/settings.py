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
    # An open /ws checks its user again this often: a disabled user's socket closes, and a
    # topic they may no longer read (a membership removed) is unsubscribed
    ws_auth_recheck_s: float = 15.0
    # A resolved session or token is remembered this long (0: never) by each instance; a
    # change made through it holds at once, one made through another within this
    auth_cache_s: float = 15.0
    auth_cache_max_entries: int = 10_000
    session_ttl_s: int = 7 * 24 * 3600
    # JSON request bodies and /ws messages nested deeper than this are refused (400)
    json_max_depth: int = 32
    # X-Forwarded-For is believed only when the peer is one of these proxies (none: never)
    trusted_proxies: tuple[str, ...] = ()
    # /metrics: a bearer token Prometheus sends, and/or a separate listener (port 0: none).
    # With neither, /metrics answers an admin's credentials only.
    metrics_token: str = ""
    metrics_address: str = "127.0.0.1"
    metrics_port: int = 0
    # Git webhooks in (services/webhooks/): payload size, rules per project, how long a
    # delivery id is remembered (a replay within it creates nothing)
    webhook_max_body_bytes: int = 1024 * 1024
    webhook_rules_max: int = 20
    webhook_delivery_ttl_s: int = 7 * 24 * 3600
    webhook_refused_audit_every_s: float = 60.0   # refused deliveries audited per address
    # Notifications out (services/notify/): private addresses need this switch (as git
    # remotes need outbound_allow_private); queues, timeouts, retries, the delivery log
    notify_allow_private: bool = False
    notify_channels_max: int = 20           # per project
    notify_queue_max: int = 100             # waiting messages per channel (then dropped)
    notify_dispatch_max: int = 1000         # release events waiting to be fanned out
    notify_timeout_s: float = 10.0
    notify_max_attempts: int = 4
    notify_backoff_s: float = 1.0           # doubling after each failed attempt...
    notify_backoff_max_s: float = 60.0      # ...up to this (also caps a Retry-After)
    notify_log_ttl_s: int = 30 * 24 * 3600
    # The address people reach Ferry at, for links in notifications ("" for none)
    public_url: str = ""
    # /readyz: how long the database may take to answer its ping
    readyz_db_timeout_s: float = 2.0

    # Sign-in throttling, per account and per client address (in memory, per instance)
    signin_max_failures: int = 10           # failed passwords per account per window...
    signin_address_max_failures: int = 30   # ...and per address, across account names
    signin_window_s: float = 600.0
    signin_lockout_s: float = 60.0          # the first lockout; each next one doubles...
    signin_lockout_max_s: float = 3600.0    # ...up to this
    signin_throttle_max_entries: int = 10000  # per table (accounts, addresses); LRU beyond
    # API tokens: the longest expiry a token may ask for, how many one user may hold, and
    # how often a token's last use is written (at most once per this many seconds)
    token_max_days: int = 3650
    tokens_per_user_max: int = 100
    token_touch_interval_s: float = 60.0

    # Worker threads for tar and hashing (packaging); git and password hashing have their own
    executor_threads: int = 4
    # git's own pool, so stalled remotes never starve sign-in or packaging
    git_threads: int = 6
    # Password hashing (scrypt) pool, apart from git and packaging
    auth_threads: int = 2

    # git
    git_timeout_s: float = 300.0
    git_low_speed_limit_bps: int = 1000
    git_low_speed_time_s: int = 30
    git_allow_file_urls: bool = False
    git_commits_limit: int = 50
    release_commits_max: int = 200      # commits listed on a release page ("and N more")
    git_refs_limit: int = 500
    git_error_max_chars: int = 500
    # Network git work (clone/fetch): at most this many at once, and per remote host:port;
    # waiting happens on the event loop, never in a pool thread.
    git_fetch_concurrency: int = 3
    git_fetch_per_remote: int = 2
    # TCP connect (+ TLS handshake for https) to a remote must finish within this
    git_connect_timeout_s: float = 10.0
    # POST /api/projects/<name>/refresh fetches at most once per this many seconds; GET
    # refs reports `stale` once the mirror is older than git_refs_stale_s
    git_refresh_min_interval_s: float = 10.0
    git_refs_stale_s: float = 300.0
    # Quotas on repository content: the mirror after a fetch, the exported tree (checked
    # before anything is written)
    git_mirror_max_bytes: int = 2 * 1024**3
    repo_export_max_bytes: int = 1024**3
    repo_export_max_files: int = 100_000
    # artifacts (tar.gz of the built tree)
    artifact_gzip_level: int = 6
    # what the artifact unpacks to on each host (the built tree), before compression
    artifact_max_unpacked_bytes: int = 2 * 1024**3
    artifact_max_files: int = 200_000

    # Outbound connections (git remotes; notifications later): loopback, private,
    # link-local and reserved addresses are refused unless allowed here
    outbound_allow_private: bool = False
    outbound_allow_cidrs: tuple[str, ...] = ()
    outbound_resolve_timeout_s: float = 5.0

    # SSH
    ssh_connect_timeout_s: float = 10.0
    ssh_login_timeout_s: float = 10.0
    # Connections opened at once (TCP, key exchange, authentication), over all releases;
    # more wait their turn, and ssh_connect_timeout_s counts from a connection's own start.
    ssh_handshakes_max: int = 20
    ssh_keepalive_interval_s: float = 15.0
    ssh_keepalive_count_max: int = 3
    ssh_command_timeout_s: float = 300.0
    ssh_line_max_bytes: int = 4096
    ssh_step_output_max_bytes: int = 1024 * 1024
    # Lines per step (remote command or local hook), apart from bytes: a million short
    # lines fit in 2 MB. Past either cap output is read and discarded, with one marker.
    ssh_step_output_max_lines: int = 10_000
    ssh_upload_chunk_bytes: int = 64 * 1024
    ssh_keyscan_timeout_s: float = 10.0
    ssh_client_keys: tuple[str, ...] = ()
    # Key files (key_path, ssh_client_keys) and known_hosts are read in a pool of this many
    # threads, never on the event loop; a key file must be a regular file of at most
    # ssh_key_max_bytes (no FIFO, device or symlink), read within ssh_key_read_timeout_s
    ssh_file_threads: int = 2
    ssh_key_max_bytes: int = 64 * 1024
    ssh_key_read_timeout_s: float = 10.0
    ssh_known_hosts_max_bytes: int = 64 * 1024 * 1024

    # Pipeline
    hook_timeout_s: float = 600.0
    # PATH of hooks on the hosts, which run in a clean environment (env -i)
    hook_path: str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    local_hook_timeout_s: float = 900.0
    verify_retries: int = 5
    verify_interval_s: float = 2.0
    verify_timeout_s: float = 10.0
    default_keep_releases: int = 5
    max_hosts_per_release: int = 5000
    inventory_max_chars: int = 512 * 1024   # an Ansible inventory imported at once
    host_history_page_max: int = 100    # releases per page of GET /api/hosts/<name>/releases
    host_history_scan_max: int = 1000   # newest host runs read for `current` and failures
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
    # GET /api/releases/<id>?wait=S holds the answer until the release ends (or pauses),
    # at most this long; it counts against longpoll_max_waiters like any long-poll.
    release_wait_max_s: float = 600.0
    # A release that has just ended here is shown ended only once its end is stored and
    # published (host runs flushed, lock released): a read waits at most this long for that.
    release_end_wait_s: float = 10.0
    event_topic_max_chars: int = 200
    event_max_topics_in_memory: int = 1000
    event_topic_idle_s: float = 120.0
    event_flush_retry_max_s: float = 5.0
    event_shared_write_attempts: int = 20
    ws_max_topics: int = 64
    log_flush_interval_s: float = 0.25
    # A host run whose state did not change (only a stage's start or end, not the
    # switch's) is rewritten at most this often; live readers get it from events at once.
    host_progress_write_interval_s: float = 2.0
    # Host log storage: a chunk document holds at most this many lines and bytes (BSON
    # estimate), far below MongoDB's 16 MiB document limit whatever the output.
    log_batch_max_lines: int = 2000
    log_batch_max_bytes: int = 2 * 1024 * 1024
    # A log write that fails for a transient reason is retried (same chunk ids, so never
    # stored twice) this many times, waiting from log_write_retry_s doubling up to
    # log_write_retry_max_s; then its lines are counted as lost (host run's
    # `log_lines_lost`), and the release goes on.
    log_write_attempts: int = 6
    log_write_retry_s: float = 0.25
    log_write_retry_max_s: float = 5.0
    # Log lines a release keeps in memory waiting for storage; beyond it they are lost
    # (counted) rather than letting a slow database grow the server's memory.
    log_pending_max_lines: int = 200_000
    # Back-pressure: a release starts no new host step while more than this many of its log
    # lines wait for the database, or events wait for the bus (the release slows down
    # before memory grows; `log_pending_max_lines` is the hard stop behind it).
    record_backlog_max_lines: int = 20_000
    record_outbox_max_events: int = 20_000
    # Event chunk documents: at most this many bytes (BSON), whatever the events; one
    # event larger than event_max_bytes is stored as a stub saying so.
    event_chunk_max_bytes: int = 4 * 1024 * 1024
    event_max_bytes: int = 1024 * 1024

    # Chat and votes
    chat_message_max_chars: int = 2000      # longer messages are refused (400)
    chat_rate_burst: int = 5                # messages a user may send at once...
    chat_rate_per_s: float = 1.0            # ...then this many per second (429 with the wait)
    chat_rate_max_users: int = 10000        # rate-limit buckets held in memory (oldest dropped)
    chat_history_page_max: int = 200        # most messages one history page returns
    chat_failure_window_s: float = 10.0     # host failures are told in one message per window
    chat_failure_names_max: int = 20        # host names listed in that message ("and N more")
    vote_comment_max_chars: int = 500
    vote_timeout_max_s: int = 7 * 24 * 3600
    vote_screen_chat_lines: int = 12        # newest room lines a big-screen vote page shows

    # Approvals, freeze windows and scheduled releases (services/releases/gates.py)
    approval_max_required: int = 20         # approvals a project may require
    approval_max_approvers: int = 50        # entries in a project's approval.approvers
    approval_expires_default_s: int = 24 * 3600
    approval_expires_max_s: int = 30 * 24 * 3600
    approval_comment_max_chars: int = 500
    freeze_max_windows: int = 50            # windows in a project's freezes
    freeze_reason_max_chars: int = 200
    freeze_duration_max_s: int = 31 * 24 * 3600   # of one recurring window
    schedule_max_ahead_s: int = 90 * 24 * 3600    # how far ahead not_before may be
    gate_max_waiting: int = 1000            # releases scheduled or awaiting approval at once
    gate_retry_s: float = 10.0              # a due release whose project is locked retries

    # The big-screen wall (services/wall/)
    wall_max_hosts: int = 20000             # hosts the wall's board holds (bounded memory)
    wall_recent_releases: int = 8           # finished releases the wall lists
    wall_scan_releases: int = 20            # start-up: host tiles from these newest releases
    wall_hosts_refresh_s: float = 5.0       # registry re-read (other instances' host changes)
    wall_load_timeout_s: float = 30.0       # GET /api/wall waits this long for the first load
    wall_links_max: int = 200               # wall links, revoked ones included (409 beyond)
    wall_link_name_max_bytes: int = 100
    wall_link_recheck_s: float = 5.0        # wall-link sockets and polls see a revocation within

    # The audit log (services/team/audit.py)
    audit_page_max: int = 200               # most entries one GET /api/audit page returns
    audit_write_attempts: int = 3           # tries of a refused entry, then the server log
    audit_value_max_chars: int = 65536      # longer strings in an entry's details are cut
    audit_filter_max_chars: int = 200       # longest actor / project filter accepted
    audit_wall_link_use_every_s: float = 900.0   # a wall link's use: one entry per this

    # Shutdown
    shutdown_grace_s: float = 10.0

    # The embedded database (a child process when no mongo_url is given)
    embedded_db_start_timeout_s: float = 60.0   # WiredTiger recovery after a crash included
    embedded_db_stop_timeout_s: float = 5.0     # SIGTERM, then SIGKILL (writes are durable)
    embedded_db_cache_size: str = "1G"          # WiredTiger cache, written to db.toml
    embedded_db_log_level: str = "WARNING"      # its own log, in <data-dir>/db.log
    embedded_db_log_max_bytes: int = 10 * 1024 * 1024   # db.log moves to db.log.1 past this
    embedded_db_log_tail_lines: int = 20        # its last lines shown when it fails to start

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
