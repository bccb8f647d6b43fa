"""The wall's board and links, without HTTP: host states follow `wall` events in seq
order, memory stays bounded, a restart reloads states from the newest releases, and
link tokens are stored hashed."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.store import utcnow
from services.wall import WallService
from services.wall.board import Board
from services.wall.links import LinkRevoked


def release_event(seq: int, release_id: int, state: str, hosts: dict) -> dict:
    return {"seq": seq, "type": "release", "ts": 1_700_000_000 + seq, "data": {
        "release_id": release_id, "project": "app", "ref": "v2", "sha": "a" * 40,
        "state": state, "total": len(hosts), "counts": {}, "hosts": hosts}}


def test_each_host_shows_its_latest_state_after_events_in_order():
    board = Board(max_hosts=100, recent=8)
    board.set_registry({"h1": ["web"], "h2": ["web"]})
    board.apply(release_event(1, 5, "running", {"h1": ["running", "upload"]}))
    board.apply(release_event(2, 5, "running", {"h1": ["ok", "prune"],
                                                "h2": ["running", "verify"]}))
    snapshot = board.snapshot()
    assert [(h["name"], h["state"], h["stage"]) for h in snapshot["hosts"]] == [
        ("h1", "ok", "prune"), ("h2", "running", "verify")]
    assert snapshot["seq"] == 2 and snapshot["hosts"][0]["release_id"] == 5


def test_only_the_newest_finished_releases_are_kept():
    board = Board(max_hosts=100, recent=2)
    for release_id in range(1, 6):
        board.apply(release_event(release_id, release_id, "succeeded", {}))
    board.apply(release_event(6, 6, "running", {}))
    assert [r["release_id"] for r in board.snapshot()["releases"]] == [6, 5, 4]


def test_a_release_waiting_to_start_is_neither_running_nor_finished():
    board = Board(max_hosts=100, recent=8)
    board.apply(release_event(1, 1, "succeeded", {}))
    for seq, state in enumerate(("scheduled", "awaiting_approval"), 2):
        board.apply(release_event(seq, seq, state, {}))
    assert [r["release_id"] for r in board.snapshot()["releases"]] == [1]
    board.apply(release_event(4, 3, "running", {}))
    assert [r["release_id"] for r in board.snapshot()["releases"]] == [3, 1]


def test_the_board_never_holds_more_hosts_than_its_limit():
    board = Board(max_hosts=3, recent=8)
    board.apply(release_event(1, 1, "running", {f"h{i}": ["running", None] for i in range(10)}))
    board.set_registry({f"r{i}": [] for i in range(10)})
    assert len(board.snapshot()["hosts"]) <= 3


def test_hosts_the_registry_no_longer_has_leave_the_board():
    board = Board(max_hosts=100, recent=8)
    board.set_registry({"h1": ["web"], "h2": ["db"]})
    board.set_registry({"h2": ["db", "eu"]})
    assert [(h["name"], h["groups"]) for h in board.snapshot()["hosts"]] == [
        ("h2", ["db", "eu"])]


def vote_event(seq: int, release_id: int, state: str, go: int) -> dict:
    return {"seq": seq, "type": "vote", "ts": 0, "data": {
        "release_id": release_id, "state": state, "go": go, "min_go": 2}}


def test_a_vote_shows_while_open_and_goes_when_decided_or_the_release_ends():
    board = Board(max_hosts=10, recent=8)
    board.apply(release_event(1, 3, "paused", {}))
    board.apply(vote_event(2, 3, "open", 1))
    assert board.snapshot()["votes"][0]["go"] == 1
    board.apply(release_event(3, 3, "succeeded", {}))
    assert board.snapshot()["votes"] == []


def test_word_of_an_open_vote_after_its_release_ended_does_not_bring_it_back():
    board = Board(max_hosts=10, recent=8)
    board.apply(release_event(1, 3, "paused", {}))
    board.apply(vote_event(2, 3, "open", 0))
    board.apply(release_event(3, 3, "cancelled", {}))
    board.apply(vote_event(4, 3, "open", 1))      # read by the relay before the cancel
    assert board.snapshot()["votes"] == []


async def wait_for_seq(wall: WallService, seq: int) -> dict:
    while True:
        snapshot = await wall.snapshot()
        if snapshot["seq"] >= seq:
            return snapshot
        await asyncio.sleep(0.02)


async def test_a_snapshot_is_current_to_the_seq_of_the_events_it_reflects(services):
    await services.hosts.create({"name": "web-1", "address": "127.0.0.1", "groups": ["web"]})
    event = await services.events.publish("wall", "release", release_event(
        0, 9, "running", {"web-1": ["running", "extract"]})["data"])
    snapshot = await wait_for_seq(services.wall, event["seq"])
    assert snapshot["seq"] == event["seq"]
    assert snapshot["hosts"][0]["state"] == "running"


def groups_on_wall(snapshot: dict) -> dict[str, list[str]]:
    return {host["name"]: host["groups"] for host in snapshot["hosts"]}


async def wall_when(wall: WallService, check) -> None:
    """Until `check(host name → groups)` holds (the wall's next reads of the registry)."""
    while True:
        if check(groups_on_wall(await wall.snapshot())):
            return
        await asyncio.sleep(0.05)


async def test_hosts_created_changed_and_deleted_here_show_in_the_next_snapshot(services):
    hosts = services.hosts
    await hosts.create({"name": "web-1", "address": "127.0.0.1", "groups": ["web"]})
    await hosts.create_many([{"name": f"db-{i}", "address": "127.0.0.1", "groups": ["db"]}
                             for i in (1, 2)])
    assert groups_on_wall(await services.wall.snapshot()) == {
        "db-1": ["db"], "db-2": ["db"], "web-1": ["web"]}
    await hosts.update("web-1", {"groups": ["web", "eu"]})
    await hosts.delete("db-2")
    assert groups_on_wall(await services.wall.snapshot()) == {
        "db-1": ["db"], "web-1": ["web", "eu"]}


async def test_the_snapshot_sent_is_the_snapshot_until_the_board_changes(services):
    await services.hosts.create({"name": "web-1", "address": "127.0.0.1", "groups": ["w"]})
    first = await services.wall.snapshot_json()
    assert json.loads(first) == await services.wall.snapshot()
    assert await services.wall.snapshot_json() is first               # encoded once
    await services.hosts.update("web-1", {"groups": ["w", "eu"]})
    assert json.loads(await services.wall.snapshot_json())["hosts"][0]["groups"] == ["w", "eu"]


@pytest.mark.parametrize("settings_overrides", [{"wall_hosts_refresh_s": 0.1}])
async def test_hosts_another_instance_wrote_show_after_the_registry_is_read_again(services):
    await services.hosts.create({"name": "mine", "address": "127.0.0.1", "groups": ["a"]})
    await services.store.hosts.insert_one({"name": "theirs", "groups": ["b"]})
    await services.store.hosts.update_one({"name": "mine"}, {"$set": {"groups": ["c"]}})
    await wall_when(services.wall, lambda hosts: hosts == {"mine": ["c"], "theirs": ["b"]})
    await services.store.hosts.delete_one({"name": "theirs"})
    await wall_when(services.wall, lambda hosts: "theirs" not in hosts)


async def test_what_is_told_while_the_registry_is_read_wins_over_the_read(services):
    """A read of the registry may pass a host before this instance writes it: what the
    host service told meanwhile is applied over what the read found."""
    wall = services.wall
    await services.store.hosts.insert_one({"name": "gone", "groups": ["a"]})
    read = asyncio.create_task(wall._read_registry())
    await asyncio.sleep(0)
    assert wall._told is not None             # the read is under way
    wall.host_changed("new", ["b"])           # written after the read passed it
    wall.host_changed("gone", None)           # deleted after the read saw it
    await read
    assert groups_on_wall(await wall.snapshot()) == {"new": ["b"]}


async def test_a_restarted_wall_loads_host_states_from_the_newest_releases(services):
    await services.store.hosts.insert_many([{"name": "a", "groups": ["web"]},
                                            {"name": "b", "groups": ["web"]}])
    now = utcnow()
    await services.store.releases.insert_many([
        {"_id": 1, "project": "app", "ref": "v1", "sha": "1" * 40, "state": "succeeded",
         "hosts": ["a", "b"], "counts": {"ok": 2}, "created_at": now},
        {"_id": 2, "project": "app", "ref": "v2", "sha": "2" * 40, "state": "failed",
         "hosts": ["a"], "counts": {"failed": 1}, "created_at": now}])
    await services.store.host_runs.insert_many([
        {"_id": "1:a", "release_id": 1, "host": "a", "state": "ok", "finished_at": now},
        {"_id": "1:b", "release_id": 1, "host": "b", "state": "ok", "finished_at": now},
        {"_id": "2:a", "release_id": 2, "host": "a", "state": "failed", "finished_at": now}])
    wall = WallService(services.settings, services.store, services.events,
                       owns=lambda _: False, vote_of=services._vote_of)
    await wall.open()
    try:
        snapshot = await wall.snapshot()
    finally:
        await wall.close()
    hosts = {h["name"]: (h["state"], h["release_id"], h["ref"]) for h in snapshot["hosts"]}
    assert hosts == {"a": ("failed", 2, "v2"), "b": ("ok", 1, "v1")}
    assert [r["release_id"] for r in snapshot["releases"]] == [2, 1]


async def test_a_link_token_is_stored_only_as_its_digest(services):
    link = await services.wall.links.create("admin", {"name": "TV"})
    doc = await services.store.db["wall_links"].find_one({"_id": link["id"]})
    assert link["token"] not in repr(doc)
    assert (await services.wall.links.resolve(link["token"]))["_id"] == link["id"]


async def test_a_revoked_link_resolves_as_revoked_and_a_malformed_one_as_none(services):
    link = await services.wall.links.create("admin", {"name": "TV"})
    await services.wall.links.revoke(link["id"])
    with pytest.raises(LinkRevoked):
        await services.wall.links.resolve(link["token"])
    for token in (None, "", "fw_short", link["token"] + "x", link["token"] + "\n", 42):
        assert await services.wall.links.resolve(token) is None
