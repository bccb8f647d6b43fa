"""Strategy: how a release's hosts are split into batches, how many run at once, where it
pauses and how many failures it tolerates — specified without hosts or a server."""

from __future__ import annotations

import pytest

from services.errors import Invalid
from services.releases.strategies import Strategy

HOSTS = [f"web-{n}" for n in range(1, 11)]


def sizes(plan: list[list[str]]) -> list[int]:
    return [len(batch) for batch in plan]


def test_the_default_is_one_batch_of_every_host():
    assert sizes(Strategy.parse(None).plan(HOSTS)) == [10]


def test_a_ramp_places_every_host_once_in_order():
    plan = Strategy.parse({"batches": [1, 2, "50%"]}).plan(HOSTS)
    assert sizes(plan) == [1, 2, 5, 2]
    assert [host for batch in plan for host in batch] == HOSTS


def test_the_last_size_repeats_until_every_host_is_placed():
    assert sizes(Strategy.parse({"batches": [3]}).plan(HOSTS)) == [3, 3, 3, 1]


def test_a_percentage_rounds_up_and_is_never_zero():
    assert sizes(Strategy.parse({"batches": ["1%"]}).plan(HOSTS[:3])) == [1, 1, 1]
    assert sizes(Strategy.parse({"batches": ["34%"]}).plan(HOSTS[:3])) == [2, 1]


def test_canary_preset_is_one_host_then_the_rest_with_a_pause_between():
    strategy = Strategy.parse({"preset": "canary"})
    assert sizes(strategy.plan(HOSTS)) == [1, 9]
    assert strategy.pause_after == [1]


def test_fields_given_with_a_preset_override_it():
    strategy = Strategy.parse({"preset": "canary", "batches": [2, "100%"]})
    assert sizes(strategy.plan(HOSTS)) == [2, 8] and strategy.pause_after == [1]


def test_an_empty_host_list_plans_no_batch():
    assert Strategy.parse(None).plan([]) == []


@pytest.mark.parametrize("max_fail, total, limit", [
    (None, 10, None), (0, 10, 0), (2, 10, 2), ("10%", 10, 1), ("25%", 10, 2), ("5%", 10, 0)])
def test_max_fail_is_a_count_or_a_share_of_the_whole_release(max_fail, total, limit):
    assert Strategy.parse({"max_fail": max_fail}).fail_limit(total) == limit


def test_pause_after_is_sorted_and_deduplicated():
    assert Strategy.parse({"batches": [1], "pause_after": [3, 1, 3]}).pause_after == [1, 3]


def test_a_strategy_round_trips_through_json():
    body = {"batches": [1, "100%"], "parallel": 7, "pause_after": [1], "max_fail": "10%",
            "auto_rollback": True, "vote": {"min_go": 2}}
    strategy = Strategy.parse(body)
    assert Strategy.parse(strategy.to_json()) == strategy


@pytest.mark.parametrize("body, words", [
    ([], "object"),
    ({"batches": []}, "1 to 50"),
    ({"batches": [0]}, "≥ 1"),
    ({"batches": ["0%"]}, "percentage"),
    ({"batches": ["101%"]}, "percentage"),
    ({"batches": ["50%\n"]}, "percentage"),
    ({"batches": [True]}, "count"),
    ({"batches": [1] * 51}, "1 to 50"),
    ({"parallel": 0}, "parallel"),
    ({"parallel": True}, "parallel"),
    ({"parallel": 10**9}, "parallel"),
    ({"pause_after": [0]}, "pause_after"),
    ({"pause_after": "1"}, "pause_after"),
    ({"max_fail": -1}, "max_fail"),
    ({"max_fail": "x"}, "max_fail"),
    ({"auto_rollback": "yes"}, "auto_rollback"),
    ({"preset": "yolo"}, "preset"),
    ({"batches": [1], "surprise": 1}, "surprise"),
    ({"vote": {"min_go": 1}}, "pause_after"),
    ({"pause_after": [1], "vote": {"min_go": 0}}, "min_go"),
    ({"pause_after": [1], "vote": {"on_timeout": "explode"}}, "on_timeout"),
])
def test_an_invalid_strategy_is_refused_with_a_message_naming_the_field(body, words):
    with pytest.raises(Invalid) as refused:
        Strategy.parse(body)
    assert words in str(refused.value)
