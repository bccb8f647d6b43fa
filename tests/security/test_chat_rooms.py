"""Room names that try to leave their family, and rooms of things that do not exist."""

from __future__ import annotations

import json

import pytest

from tests.deploykit import register_project
from tests.handlers.eventkit import next_message, ws_connect

BAD_ROOMS = ["..%2Flobby", "lobby%0A", "lobby%0D%0Ax", "l%C3%B6bby", "%D0%BBobby",
             "release-0", "release-01", "release-99999999999999999999", "project-",
             "project-..", "project-.hidden", "release-1%00", "LOBBY", "x" * 200]


@pytest.mark.parametrize("room", BAD_ROOMS)
async def test_odd_room_names_are_unknown_rooms(api, room):
    assert (await api.post(f"/api/chat/{room}/messages", {"text": "x"}))[0] == 404
    assert (await api.get(f"/api/chat/{room}/messages"))[0] == 404


async def test_a_path_that_leaves_the_room_collection_reaches_no_room(api):
    status, _ = await api.post("/api/chat/lobby/../../releases/messages", {"text": "x"})
    assert status == 404


async def test_a_room_of_another_project_that_does_not_exist_is_hidden_everywhere(
        api, base_url, admin_token, app_repo):
    await register_project(api, app_repo)
    assert (await api.post("/api/chat/project-app/messages", {"text": "ours"}))[0] == 201
    assert (await api.post("/api/chat/project-other/messages", {"text": "x"}))[0] == 404
    assert (await api.get("/api/chat/project-other/messages"))[0] == 404
    assert (await api.get("/api/events?topic=chat:project-other&after=0"))[0] == 404
    conn = await ws_connect(base_url, admin_token)
    conn.write_message(json.dumps({"op": "subscribe", "topic": "chat:project-other"}))
    assert (await next_message(conn))["reason"] == "unknown_topic"
    conn.write_message(json.dumps({"op": "subscribe", "topic": "chat:../lobby"}))
    assert (await next_message(conn))["reason"] in ("bad_request", "unknown_topic")
    conn.close()


async def test_a_release_room_exists_only_with_its_release(api):
    for room in ("release-1", "release-42"):
        assert (await api.get(f"/api/events?topic=chat:{room}&after=0"))[0] == 404
