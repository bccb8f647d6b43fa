"""The gate rules without HTTP: freeze windows (one-off, recurring in a time zone,
chained), approval settings and who counts as an approver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from services.errors import Invalid
from services.releases import approval, freeze
from services.settings import Settings
from services.team.auth import User

SETTINGS = Settings()
# Friday 16:00 to Monday 08:00, Berlin time.
WEEKEND = {"cron": "0 16 * * 5", "duration_s": 64 * 3600, "timezone": "Europe/Berlin",
           "reason": "weekend"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_recurring_window_follows_its_time_zone():
    # 2026-12-04 is a Friday; Berlin is UTC+1 in December.
    assert freeze.active([WEEKEND], at("2026-12-04T14:59:00Z")) is None
    held = freeze.active([WEEKEND], at("2026-12-04T15:00:00Z"))
    assert held is not None and held.reason == "weekend"
    assert held.until == at("2026-12-07T08:00:00+01:00")
    assert freeze.active([WEEKEND], at("2026-12-07T07:00:00Z")) is None


def test_a_recurring_window_keeps_local_time_across_daylight_saving():
    # 2026-07-03 is a Friday; Berlin is UTC+2 in summer.
    held = freeze.active([WEEKEND], at("2026-07-03T14:30:00Z"))
    assert held is not None and held.until == at("2026-07-06T08:00:00+02:00")


def test_windows_that_meet_are_one_freeze_ending_with_the_last():
    first = {"start": "2026-12-24T00:00:00Z", "end": "2026-12-26T00:00:00Z", "reason": "a"}
    second = {"start": "2026-12-26T00:00:00Z", "end": "2027-01-02T00:00:00Z", "reason": "b"}
    held = freeze.active([first, second], at("2026-12-25T12:00:00Z"))
    assert held.until == at("2027-01-02T00:00:00Z")
    assert freeze.active([first, second], at("2027-01-02T00:00:00Z")) is None


def test_a_window_ends_exactly_at_its_end():
    window = {"start": "2026-12-24T00:00:00+01:00", "end": "2026-12-25T00:00:00+01:00",
              "reason": "x"}
    assert freeze.active([window], at("2026-12-24T23:59:59+01:00")) is not None
    assert freeze.active([window], at("2026-12-25T00:00:00+01:00")) is None


def test_approval_defaults_are_filled_in():
    rules = approval.validate({"approvers": ["role:maintainer"]}, SETTINGS)
    assert rules == {"required": 1, "approvers": ["role:maintainer"],
                     "exclude_initiator": True,
                     "expires_s": SETTINGS.approval_expires_default_s}


@pytest.mark.parametrize("value", [
    {"approvers": ["dora", "dora"]}, {"approvers": "dora"}, {"approvers": ["role:"]},
    {"approvers": ["dora"], "required": True}, [],
])
def test_malformed_approval_settings_are_invalid(value):
    with pytest.raises(Invalid):
        approval.validate(value, SETTINGS)


def test_role_approvers_count_the_project_role_and_the_global_one():
    rules = approval.validate({"approvers": ["role:maintainer", "erin"]}, SETTINGS)
    assert approval.is_approver(User("dora", "deployer"), rules, "maintainer")
    assert not approval.is_approver(User("dora", "deployer"), rules, "deployer")
    assert approval.is_approver(User("erin", "viewer"), rules, None)
    assert approval.is_approver(User("root", "admin"), rules, None)


def test_the_initiator_is_excluded_only_when_the_rule_says_so():
    rules = approval.validate({"approvers": ["dora"], "exclude_initiator": False}, SETTINGS)
    release = {"created_by": "dora"}
    assert not approval.excluded(User("dora", "deployer"), rules, release)
    assert approval.excluded(User("dora", "deployer"), {**rules, "exclude_initiator": True},
                             release)


def held_release(release_id: int, **fields) -> dict:
    now = datetime.now(UTC)
    return {"_id": release_id, "project": "gone", "environment": "production",
            "kind": "deploy", "ref": "main", "sha": "a" * 40, "hosts": [], "batches": [],
            "strategy": {}, "created_by": "dora", "created_at": now, "counts": {},
            "started_at": None, "finished_at": None, "reason": None, **fields}


async def test_at_start_up_an_approval_past_its_deadline_expires_and_a_due_release_moves_on(
        services):
    from services.releases.gates import GateService

    past = datetime(2020, 1, 1, tzinfo=UTC)
    rules = {"required": 1, "approvers": ["erin"], "exclude_initiator": True, "expires_s": 60}
    await services.store.releases.insert_many([
        held_release(901, state="awaiting_approval", due_at=past, approval={
            "rules": rules, "approvals": [], "rejection": None, "since": past,
            "deadline": past, "approved_at": None}),
        held_release(902, state="scheduled", due_at=past, not_before=past)])
    gates = GateService(services.settings, services.store, services.events,
                        services.releases, services.projects, services.git, services.audit)
    await gates.open()                 # what a restarted Ferry does
    try:
        for _ in range(200):
            states = {doc["_id"]: doc["state"] async for doc in services.store.releases.find()}
            if states == {901: "expired", 902: "failed"}:
                break
            await asyncio.sleep(0.05)
        assert states == {901: "expired", 902: "failed"}   # 902's project no longer exists
        expired = await services.store.releases.find_one({"_id": 901})
        assert "0 of 1 approvals" in expired["reason"]
    finally:
        await gates.close()
