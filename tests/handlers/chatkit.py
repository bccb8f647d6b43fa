"""Helpers for the chat and vote tests: users with a role, a canary strategy with a vote,
and reading a room's live events."""

from __future__ import annotations

import asyncio
import time

from services import Services
from tests.conftest import Api

CANARY = {"batches": [1, "100%"], "pause_after": [1]}


async def user_api(services: Services, base_url: str, name: str, role: str) -> Api:
    """An API client signed in (by token) as a new user with `role`."""
    user = await services.auth.create_user(name, f"{name}-password", role)
    return Api(base_url, await services.auth.create_token(user, "tests"))


def canary_with_vote(**vote) -> dict:
    return {**CANARY, "vote": {"min_go": 2, "veto": True, **vote}}


async def room_messages(api: Api, room: str, limit: int = 200) -> list[dict]:
    status, body = await api.get(f"/api/chat/{room}/messages?limit={limit}")
    assert status == 200, body
    return body["messages"]


async def wait_for_message(api: Api, room: str, needle: str, within: float = 30) -> dict:
    """The first message of `room` whose text contains `needle` (polling its history)."""
    deadline = time.monotonic() + within
    while True:
        for message in await room_messages(api, room):
            if needle in message["text"]:
                return message
        if time.monotonic() > deadline:
            texts = [m["text"] for m in await room_messages(api, room)]
            raise AssertionError(f"no message with {needle!r} in {room}: {texts}")
        await asyncio.sleep(0.1)


async def wait_for_vote(api: Api, release_id: int, state: str = "open",
                        within: float = 30) -> dict:
    deadline = time.monotonic() + within
    while True:
        status, vote = await api.get(f"/api/releases/{release_id}/vote")
        if status == 200 and vote["state"] == state and vote["opened_at"]:
            return vote
        if time.monotonic() > deadline:
            raise AssertionError(f"vote of release {release_id}: {status} {vote}")
        await asyncio.sleep(0.05)
