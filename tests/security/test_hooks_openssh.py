"""The host-side defences on real OpenSSH servers (fleet/openssh.py), where commands run
as an unprivileged user through its login shell and a signal request goes through sshd:
a hook's leftover processes are killed, a symlinked deploy path is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet import openssh
from services.releases import remote
from services.settings import Settings
from services.ssh.client import SshError, SshService
from tests.pids import pid_gone

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
PATH = Settings().hook_path


@pytest.fixture
async def sshd(tmp_path: Path):
    async with openssh.Fleet(tmp_path / "openssh", 1) as fleet:
        yield fleet


@pytest.fixture
async def session(tmp_path: Path, sshd):
    ssh = SshService(Settings(data_dir=tmp_path / "data", ssh_connect_timeout_s=10.0))
    host = sshd.hosts[0]
    await ssh.trust_host_key(host.address, host.port, host.public_key)
    session = await ssh.connect(sshd.host_document(0))
    yield session
    await session.close()
    ssh.close()



async def test_a_nohup_child_of_a_hook_does_not_outlive_it_on_openssh(session, sshd):
    script = "nohup sleep 300 >/dev/null 2>&1 & echo $! > /srv/child.pid; echo started"
    lines: list[str] = []
    result = await session.run(remote.hook(script, "/srv", {}, PATH), timeout=30,
                               on_line=lines.append)
    assert (result.exit_status, lines) == (0, ["started"])
    assert await pid_gone(int(sshd.host_path(0, "/srv/child.pid").read_text()))


async def test_a_hook_past_its_timeout_is_killed_with_its_children_on_openssh(session, sshd):
    script = "sleep 300 & echo $! > /srv/child.pid; wait"
    with pytest.raises(SshError, match="timed out"):
        await session.run(remote.hook(script, "/srv", {}, PATH), timeout=2)
    pid_file = sshd.host_path(0, "/srv/child.pid")
    assert pid_file.exists()
    assert await pid_gone(int(pid_file.read_text()))


async def test_a_symlinked_deploy_path_is_refused_on_openssh(session, sshd):
    real = sshd.host_path(0, "/srv/elsewhere")
    real.mkdir()
    sshd.host_path(0, "/srv/app").symlink_to("/srv/elsewhere")
    lines: list[str] = []
    result = await session.run(remote.check_artifact("/srv/app", "0" * 64), timeout=30,
                               on_line=lines.append)
    assert result.exit_status == remote.DEPLOY_PATH_REFUSED
    assert lines == ["ferry: deploy path /srv/app resolves to /srv/elsewhere; refusing"]
    assert list(real.iterdir()) == []
