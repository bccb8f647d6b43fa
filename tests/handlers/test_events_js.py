"""static/js/events.js, run by Node against the live server: WebSocket, the long-polling
fallback, and resuming after the server drops the connection."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.handlers.eventkit import make_release

HARNESS = Path(__file__).resolve().parent.parent / "js" / "event_client_run.mjs"


def node_with_websocket() -> str | None:
    """Node >= 20.10 has a WebSocket client (behind a flag before 22)."""
    node = shutil.which("node")
    if node is None:
        return None
    probe = subprocess.run([node, "--experimental-websocket", "--no-warnings", "-e",
                            "if (typeof WebSocket !== 'function') process.exit(1)"],
                           capture_output=True, check=False)
    return node if probe.returncode == 0 else None


NODE = node_with_websocket()
pytestmark = pytest.mark.skipif(NODE is None, reason="needs node with a WebSocket client")


async def start_client(base_url: str, token: str, topic: str, last_seq: int, mode: str):
    return await asyncio.create_subprocess_exec(
        NODE, "--experimental-websocket", "--no-warnings", str(HARNESS), base_url, token,
        topic, str(last_seq), mode, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)


async def progress(client) -> int:
    line = await asyncio.wait_for(client.stdout.readline(), 30)
    assert line, (await client.stderr.read()).decode()
    return json.loads(line).get("progress", 0)


async def outcome(client) -> dict:
    out, err = await asyncio.wait_for(client.communicate(), 60)
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert client.returncode == 0, (result, err.decode())
    return result


async def test_the_browser_client_follows_a_topic_over_websocket(services, base_url,
                                                                 admin_token):
    topic = await make_release(services)
    for n in range(30):
        await services.events.publish(topic, "log", {"n": n})
    client = await start_client(base_url, admin_token, topic, 60, "ws")
    assert await progress(client) > 0
    for n in range(30, 60):
        await services.events.publish(topic, "log", {"n": n})
    result = await outcome(client)
    assert result["seqs"] == list(range(1, 61))
    assert "live" in result["statuses"] and "polling" not in result["statuses"]


async def test_the_browser_client_long_polls_when_websocket_is_blocked(services, base_url,
                                                                      admin_token):
    topic = await make_release(services)
    for n in range(30):
        await services.events.publish(topic, "log", {"n": n})
    client = await start_client(base_url, admin_token, topic, 60, "blocked")
    assert await progress(client) > 0
    for n in range(30, 60):
        await services.events.publish(topic, "log", {"n": n})
        await asyncio.sleep(0.01)
    result = await outcome(client)
    assert result["seqs"] == list(range(1, 61))
    assert "polling" in result["statuses"] and "live" not in result["statuses"]


async def test_the_browser_client_resumes_after_the_server_drops_it(services, base_url,
                                                                   admin_token):
    topic = await make_release(services)
    await services.events.publish(topic, "log", {"n": 0})
    client = await start_client(base_url, admin_token, topic, 40, "ws")
    assert await progress(client) == 1
    await services.events.close_clients()          # every socket dropped at once
    for n in range(1, 40):
        await services.events.publish(topic, "log", {"n": n})
    result = await outcome(client)
    assert result["seqs"] == list(range(1, 41))
    assert result["statuses"].count("live") >= 2 and "offline" in result["statuses"]
