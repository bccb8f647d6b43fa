"""HostService against real SSH servers (fleet.simulator): a host's trust follows its address."""

from __future__ import annotations

import pytest

from services.ssh.client import SshError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def trusted(services, make_fleet):
    """Two fleet hosts; only host-0 is registered, scanned and trusted."""
    fleet = await make_fleet(2)
    host = fleet.hosts[0]
    await services.hosts.create({"name": "web", "address": host.address, "port": host.port,
                                 "key_path": str(fleet.client_key_path), "groups": ["a"]})
    scan = await services.hosts.scan("web")
    await services.hosts.trust("web", scan["fingerprint"])
    return fleet


async def connect_fails(services, reason: str) -> bool:
    try:
        session = await services.ssh.connect(await services.hosts.get("web"))
    except SshError as error:
        return reason in error.reason
    await session.close()
    return False


async def test_changing_a_host_address_and_port_clears_its_trust(services, trusted):
    other = trusted.hosts[1]
    host = await services.hosts.update("web", {"address": other.address, "port": other.port})
    assert host["host_key_fingerprint"] is None
    assert await connect_fails(services, "not known; scan and confirm it first")


async def test_a_host_moved_back_to_its_old_address_must_be_scanned_again(services, trusted):
    old, other = trusted.hosts
    await services.hosts.update("web", {"port": other.port})
    host = await services.hosts.update("web", {"port": old.port})
    assert host["host_key_fingerprint"] is None
    assert await connect_fails(services, "not known; scan and confirm it first")


async def test_changing_groups_user_or_variables_keeps_trust(services, trusted):
    host = await services.hosts.update("web", {"groups": ["b"], "user": "deploy",
                                               "variables": {"APP_ENV": "prod"}})
    assert host["host_key_fingerprint"] == trusted.hosts[0].fingerprint
    session = await services.ssh.connect(await services.hosts.get("web"))
    await session.close()
