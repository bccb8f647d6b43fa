"""Commands and votes with hostile arguments: shell metacharacters stay text, bad
choices and types are refused, and nothing runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.handlers.chatkit import room_messages, user_api
from tests.handlers.eventkit import make_release


@pytest.fixture
async def room(services) -> str:
    await make_release(services, 7)
    return "release-7"


async def test_shell_metacharacters_in_a_message_stay_text(api, tmp_path):
    target = tmp_path / "pwned"
    text = f"$(touch {target}); `touch {target}` | sh && touch {target}"
    status, message = await api.post("/api/chat/lobby/messages", {"text": text})
    assert status == 201 and message["text"] == text
    assert not Path(target).exists()


@pytest.mark.parametrize("text", ["/promote; rm -rf /", "/cancel && id", "/status $(id)",
                                  "/rollback `id`", "/promote|sh", "/go\x00; id"])
async def test_commands_with_shell_metacharacters_are_refused_and_do_nothing(
        api, room, text):
    status, body = await api.post(f"/api/chat/{room}/messages", {"text": text})
    assert status in (400, 409), body
    assert await room_messages(api, room) == []


async def test_a_vote_comment_with_metacharacters_is_kept_as_text_or_refused(api, room):
    status, body = await api.post(f"/api/chat/{room}/messages",
                                  {"text": "/go $(reboot) `halt`"})
    assert status == 409 and "no open vote" in body["message"]


@pytest.mark.parametrize("body", [{"choice": "GO"}, {"choice": "go "}, {"choice": None},
                                  {"choice": 1}, {"choice": True}, {"choice": {"$ne": 1}},
                                  {"choice": ["go"]}, {"choice": "go", "comment": ["x"]},
                                  {"choice": "go", "comment": "x" * 501}])
async def test_a_vote_with_a_bad_choice_or_type_gets_400(api, room, body):
    status, answer = await api.post("/api/releases/7/vote", body)
    assert status == 400, answer


async def test_a_vote_body_that_is_not_an_object_gets_400(api, room):
    status, _ = await api.post("/api/releases/7/vote", raw=b'["go"]')
    assert status == 400


async def test_a_viewer_may_not_vote_even_with_a_valid_body(services, base_url, room):
    viewer = await user_api(services, base_url, "vic", "viewer")
    status, _ = await viewer.post("/api/releases/7/vote", {"choice": "go"})
    assert status == 403


async def test_a_refused_command_posts_nothing_in_the_room(services, base_url, api, room):
    viewer = await user_api(services, base_url, "vic", "viewer")
    for text in ("/promote", "/cancel", "/rollback", "/go", "/nogo x"):
        status, body = await viewer.post(f"/api/chat/{room}/messages", {"text": text})
        assert status == 403 and "nothing was done" in body["message"]
    assert await room_messages(api, room) == []
