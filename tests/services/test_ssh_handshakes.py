"""How many SSH connections Ferry opens at once (`ssh_handshakes_max`), against real TCP
servers that accept and never speak: a key exchange that never ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.settings import Settings
from services.ssh.client import SshError, SshService

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_connections_beyond_ssh_handshakes_max_wait_and_each_gets_its_own_timeout(
        tmp_path: Path):
    open_now = peak = 0

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        await reader.read()   # returns when the client gives up
        open_now -= 1
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ssh = SshService(Settings(data_dir=tmp_path / "data", ssh_connect_timeout_s=0.3,
                              ssh_handshakes_max=2))
    try:
        results = await asyncio.gather(
            *(ssh.connect({"name": f"mute-{i}", "address": "127.0.0.1", "port": port,
                           "user": "deploy"}) for i in range(5)),
            return_exceptions=True)
    finally:
        ssh.close()
        server.close()
        await server.wait_closed()
    assert peak == 2
    # Every one of them was tried, each timing out on its own (none lost in the queue).
    assert [str(r) for r in results] == [f"timed out connecting to 127.0.0.1:{port}"] * 5
    assert all(isinstance(r, SshError) for r in results)
