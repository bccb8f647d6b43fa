"""SshService against real SSH servers (fleet.simulator): no mocks."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncssh
import pytest
import pytest_asyncio

from fleet.simulator import Fleet
from services.settings import Settings
from services.ssh.client import SshError, SshService, unless_cancelled
from services.ssh.hostkeys import KnownHosts, public_key_line

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", ssh_connect_timeout_s=5.0,
                    ssh_login_timeout_s=5.0, ssh_keyscan_timeout_s=5.0)


@pytest_asyncio.fixture
async def fleet(tmp_path: Path):
    async with Fleet(tmp_path / "fleet", 3) as fleet:
        yield fleet


@pytest_asyncio.fixture
async def ssh(settings: Settings, fleet: Fleet) -> SshService:
    """A service that trusts every fleet host."""
    service = SshService(settings)
    for host in fleet.hosts:
        await service.trust_host_key(host.address, host.port, host.public_key)
    return service


async def _connect(ssh: SshService, fleet: Fleet, i: int = 0):
    return await ssh.connect(fleet.host_document(i))


async def _run(ssh: SshService, fleet: Fleet, command: str, i: int = 0, **kw):
    lines: list[str] = []
    session = await _connect(ssh, fleet, i)
    try:
        result = await session.run(command, timeout=kw.pop("timeout", 30), on_line=lines.append)
    finally:
        await session.close()
    return result, lines


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def _gone(pids: list[int], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_run_returns_exit_status_and_streams_lines(ssh, fleet):
    result, lines = await _run(ssh, fleet, "echo one; echo two; echo oops >&2; exit 3")
    assert result.exit_status == 3
    assert sorted(lines) == ["one", "oops", "two"]
    assert lines.index("one") < lines.index("two")
    assert result.output_bytes == len("one\ntwo\noops\n")
    assert not result.truncated


async def test_stdin_of_run_is_closed(ssh, fleet):
    result, lines = await _run(ssh, fleet, "cat; echo done", timeout=10)
    assert (result.exit_status, lines) == (0, ["done"])


async def test_one_connection_serves_every_command(ssh, fleet):
    session = await _connect(ssh, fleet)
    try:
        for i in range(10):
            result = await session.run(f"test {i} -ge 0", timeout=10)
            assert result.exit_status == 0
    finally:
        await session.close()
    assert fleet.hosts[0].connections_total == 1
    assert fleet.hosts[0].commands == 10


async def test_hosts_have_separate_filesystems(ssh, fleet):
    for i in (0, 1):
        result, _ = await _run(ssh, fleet, f"mkdir -p /srv/app && echo {i} > /srv/app/current", i)
        assert result.exit_status == 0
    assert fleet.host_path(0, "/srv/app/current").read_text() == "0\n"
    assert fleet.host_path(1, "/srv/app/current").read_text() == "1\n"
    _, lines = await _run(ssh, fleet, "cat /srv/app/current; echo $HOME", 1)
    assert lines == ["1", str(fleet.hosts[1].root)]


async def test_upload_streams_file_and_remote_sha256_matches(ssh, fleet, tmp_path):
    source = tmp_path / "artifact.bin"
    source.write_bytes(os.urandom(5 * 1024 * 1024 + 123))
    session = await _connect(ssh, fleet, 2)
    try:
        result = await session.upload("cat > /srv/artifact.bin", source, timeout=60)
        assert result.exit_status == 0
        lines: list[str] = []
        await session.run("sha256sum /srv/artifact.bin", timeout=30, on_line=lines.append)
    finally:
        await session.close()
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    assert lines[0].split()[0] == expected
    assert fleet.host_path(2, "/srv/artifact.bin").stat().st_size == source.stat().st_size


async def test_upload_into_a_command_that_fails_reports_its_status(ssh, fleet, tmp_path):
    source = tmp_path / "artifact.bin"
    source.write_bytes(os.urandom(1024 * 1024))
    session = await _connect(ssh, fleet)
    try:
        result = await session.upload("echo no space >&2; exit 7", source, timeout=30)
    finally:
        await session.close()
    assert result.exit_status == 7


async def test_nothing_listening_is_refused(ssh, fleet):
    fleet.stop_host(0)
    with pytest.raises(SshError, match="refused") as info:
        await _connect(ssh, fleet)
    host = fleet.hosts[0]
    assert info.value.reason == f"connection refused by {host.address}:{host.port}"


async def test_host_going_down_during_a_command_gives_a_clear_reason(ssh, fleet):
    host = fleet.hosts[0]
    session = await _connect(ssh, fleet)
    try:
        started = asyncio.Event()
        task = asyncio.ensure_future(
            session.run("echo up; sleep 30", timeout=60, on_line=lambda _: started.set()))
        await started.wait()
        fleet.stop_host(0)
        with pytest.raises(SshError) as info:
            await task
        where = f"{host.address}:{host.port}"
        assert info.value.reason == f"connection to {where} was lost during a command"
        with pytest.raises(SshError) as info:
            await session.run("true", timeout=10)
        assert info.value.reason == f"connection to {where} was lost"
    finally:
        await session.close()


async def test_silent_server_times_out_connecting(settings):
    async def silent(reader, writer):
        await reader.read()  # never says a word; returns when the client gives up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ssh = SshService(settings.replace(ssh_connect_timeout_s=0.5))
    try:
        with pytest.raises(SshError) as info:
            await ssh.connect({"name": "mute", "address": "127.0.0.1", "port": port,
                               "user": "deploy"})
    finally:
        server.close()
        await server.wait_closed()
    assert info.value.reason == f"timed out connecting to 127.0.0.1:{port}"


async def test_refused_authentication_gives_a_clear_reason(ssh, fleet):
    fleet.hosts[0].refuse_auth = True
    with pytest.raises(SshError) as info:
        await _connect(ssh, fleet)
    host = fleet.hosts[0]
    assert str(info.value) == f"authentication failed for user deploy at {host.address}:{host.port}"


async def test_changed_host_key_gives_a_clear_reason(ssh, fleet):
    old = fleet.hosts[0].fingerprint
    await fleet.rotate_host_key(0)
    host = fleet.hosts[0]
    assert host.fingerprint != old
    with pytest.raises(SshError) as info:
        await _connect(ssh, fleet)
    assert info.value.reason == (
        f"host key for [{host.address}]:{host.port} has changed (server offers "
        f"{host.fingerprint}); re-scan and confirm it if this is expected")


async def test_unknown_host_key_gives_a_clear_reason(ssh, fleet):
    host = fleet.hosts[0]
    await ssh.forget_host_key(host.address, host.port)
    with pytest.raises(SshError) as info:
        await _connect(ssh, fleet)
    assert info.value.reason == (
        f"host key for [{host.address}]:{host.port} is not known; scan and confirm it first")
    assert fleet.hosts[0].commands == 0


async def test_scan_and_trust_add_to_known_hosts_and_connect_succeeds(settings, fleet):
    ssh = SshService(settings)
    host = fleet.hosts[1]
    key = await ssh.scan_host_key(host.address, host.port)
    assert (key.fingerprint, key.public_key, key.key_type) == (
        host.fingerprint, host.public_key, "ssh-ed25519")
    await ssh.trust_host_key(key.address, key.port, key.public_key)
    assert settings.known_hosts_path.read_text() == (
        f"[{host.address}]:{host.port} {host.public_key}\n")
    result, lines = await _run(ssh, fleet, "echo hello", 1)
    assert (result.exit_status, lines) == (0, ["hello"])


async def test_trust_replaces_the_old_key_of_a_host(ssh, fleet, settings):
    await fleet.rotate_host_key(0)
    host = fleet.hosts[0]
    key = await ssh.scan_host_key(host.address, host.port)
    await ssh.trust_host_key(host.address, host.port, key.public_key)
    entries = [e for e in settings.known_hosts_path.read_text().splitlines()
               if e.startswith(f"[{host.address}]:{host.port} ")]
    assert entries == [f"[{host.address}]:{host.port} {host.public_key}"]
    result, _ = await _run(ssh, fleet, "true")
    assert result.exit_status == 0


async def test_trust_rejects_what_is_not_a_public_key(ssh, fleet):
    with pytest.raises(SshError, match="not a valid OpenSSH public key"):
        await ssh.trust_host_key("127.0.1.1", 22, "ssh-ed25519 AAAA-not-base64")
    with pytest.raises(SshError, match="not a valid host address"):
        await ssh.trust_host_key("evil,* ssh-ed25519", 22, fleet.hosts[0].public_key)


async def test_command_past_its_timeout_fails_and_is_killed(ssh, fleet):
    pids: list[int] = []
    session = await _connect(ssh, fleet)
    try:
        with pytest.raises(SshError) as info:
            await session.run("echo $$; sleep 3600 & echo $!; wait", timeout=1,
                              on_line=lambda line: pids.append(int(line)))
        assert info.value.reason == "command timed out after 1s"
        assert len(pids) == 2
        assert await _gone(pids)
        result = await session.run("true", timeout=10)  # the connection still works
        assert result.exit_status == 0
    finally:
        await session.close()


async def test_cancelled_command_is_killed(ssh, fleet):
    pids: list[int] = []
    started = asyncio.Event()

    def on_line(line: str) -> None:
        pids.append(int(line))
        started.set()

    session = await _connect(ssh, fleet)
    try:
        task = asyncio.ensure_future(session.run("echo $$; exec sleep 3600", timeout=60,
                                                 on_line=on_line))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await _gone(pids)
    finally:
        await session.close()


async def test_a_connection_made_in_the_turn_its_task_is_cancelled_is_closed_and_cancelled(fleet):
    # asyncssh.connect's wait_for, in Python 3.11, hands back a connection made in the
    # same turn of the loop as a cancel and drops the cancel: the race, played exactly.
    doc = fleet.host_document(0)
    conn = await asyncssh.connect(doc["address"], doc["port"], username=doc["user"],
                                  known_hosts=None, client_keys=[doc["key_path"]])
    made = asyncio.get_running_loop().create_future()

    async def connecting() -> asyncssh.SSHClientConnection:
        return unless_cancelled(await asyncio.wait_for(made, 10))

    task = asyncio.create_task(connecting())
    await asyncio.sleep(0)
    made.set_result(conn)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(conn.wait_closed(), 10)


async def test_endless_output_is_capped_in_bounded_memory(settings, fleet, ssh):
    ssh = SshService(settings.replace(ssh_step_output_max_bytes=64 * 1024,
                                      ssh_step_output_max_lines=10**6))
    for host in fleet.hosts:
        await ssh.trust_host_key(host.address, host.port, host.public_key)
    total = 16 * 1024 * 1024
    count = 0

    def on_line(line: str) -> None:
        nonlocal count
        count += 1
        last.append(line)
        del last[:-1]

    last: list[str] = []
    session = await _connect(ssh, fleet)
    tracemalloc.start()
    try:
        result = await session.run(f"yes | head -c {total}", timeout=60, on_line=on_line)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await session.close()
    assert result.truncated and result.exit_status == 0
    assert result.output_bytes == total
    assert count == 64 * 1024 // 2 + 1
    assert last == ["[output truncated at 65536 bytes: 8355840 more lines (16711680 bytes) "
                    "were discarded]"]
    assert peak < 4 * 1024 * 1024


async def test_long_lines_are_cut_at_the_cap(settings, fleet):
    ssh = SshService(settings.replace(ssh_line_max_bytes=100))
    host = fleet.hosts[0]
    await ssh.trust_host_key(host.address, host.port, host.public_key)
    result, lines = await _run(ssh, fleet, "head -c 250 /dev/zero | tr '\\0' x; echo; echo short")
    assert result.exit_status == 0
    assert lines == ["x" * 100 + " [line cut at 100 bytes]", "short"]


async def test_connects_through_a_jump_host(ssh, fleet):
    jump = fleet.hosts[2]
    host = dict(fleet.host_document(1), jump_host=f"deploy@{jump.address}:{jump.port}")
    session = await ssh.connect(host)
    try:
        lines: list[str] = []
        result = await session.run("echo $FLEET_HOST", timeout=10, on_line=lines.append)
    finally:
        await session.close()
    assert (result.exit_status, lines) == (0, ["host-1"])
    assert (jump.connections_total, jump.commands) == (1, 0)
    assert fleet.hosts[1].connections_total == 1


async def test_known_hosts_hold_an_ipv6_address_under_its_bracketed_name(tmp_path):
    with ThreadPoolExecutor(1) as pool:
        known = KnownHosts(tmp_path / "known_hosts", pool, 1024 * 1024)
        key = asyncssh.generate_private_key("ssh-ed25519")
        await known.trust("::1", 2222, public_key_line(key))
        assert (tmp_path / "known_hosts").read_text().startswith("[::1]:2222 ssh-ed25519 ")
        assert await known.has_entry("::1", 2222) and not await known.has_entry("::1", 22)
        await known.forget("::1", 2222)
        assert not await known.has_entry("::1", 2222)


# -- key files: read off the event loop, regular files only ----------------------------

async def _connect_with_key(ssh: SshService, fleet: Fleet, key_path: str) -> str:
    """The reason connecting to host-0 with `key_path` fails."""
    with pytest.raises(SshError) as failure:
        session = await ssh.connect({**fleet.host_document(0), "key_path": key_path})
        await session.close()
    return failure.value.reason


async def test_a_key_path_that_is_a_fifo_fails_the_host_without_freezing_the_loop(
        ssh, fleet, tmp_path):
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)  # nobody ever writes: reading it would wait for ever
    assert (await _connect_with_key(ssh, fleet, str(fifo))
            == f"client key {fifo} is not a regular file")


@pytest.mark.parametrize("path, reason", [
    ("/dev/zero", "client key /dev/zero is not a regular file"),
    ("/proc/self/fd/0", "is a symbolic link"),
    ("/nonexistent/key", "cannot read client key /nonexistent/key: No such file"),
])
async def test_a_key_path_that_is_no_key_file_fails_with_a_reason(ssh, fleet, path, reason):
    assert reason in await _connect_with_key(ssh, fleet, path)


async def test_a_symlinked_key_path_is_refused(ssh, fleet, tmp_path):
    link = tmp_path / "key-link"
    link.symlink_to(fleet.client_key_path)
    assert "is a symbolic link" in await _connect_with_key(ssh, fleet, str(link))


async def test_a_huge_key_file_is_refused_unread(settings, fleet, tmp_path):
    ssh = SshService(settings.replace(ssh_key_max_bytes=1024))
    big = tmp_path / "big-key"
    big.write_bytes(b"x" * 4096)
    assert (await _connect_with_key(ssh, fleet, str(big))
            == f"client key {big} is larger than 1024 bytes")


async def test_a_file_that_is_no_private_key_fails_with_a_reason(ssh, fleet, tmp_path):
    junk = tmp_path / "junk-key"
    junk.write_text("not a key\n")
    assert (await _connect_with_key(ssh, fleet, str(junk))).startswith(
        f"cannot load client key {junk}: ")


async def test_a_changed_key_file_is_read_again(ssh, fleet, tmp_path):
    key = tmp_path / "key"
    key.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    assert "authentication failed" in await _connect_with_key(ssh, fleet, str(key))
    key.write_bytes(fleet.client_key_path.read_bytes())
    session = await ssh.connect({**fleet.host_document(0), "key_path": str(key)})
    await session.close()
