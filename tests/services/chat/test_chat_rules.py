"""The chat's rules without HTTP: room names, text cleaning, the rate limit, the vote's
verdict and the strategy's vote rules."""

from __future__ import annotations

import time

import pytest

from services.chat.messages import RateLimited, RateLimiter, clean_text
from services.chat.rooms import parse_room
from services.chat.votes import verdict
from services.errors import Invalid
from services.releases.strategies import Strategy, parse_vote


def test_room_names_name_a_release_a_project_or_the_lobby():
    assert parse_room("lobby").name == "lobby"
    assert parse_room("release-12").release_id == 12
    assert parse_room("project-web.app_2").project == "web.app_2"
    for name in ("release-0", "release-012", "project-", "project-../x", "lobby\n", "Lobby",
                 "release-1 ", "l\u043ebby", "", None, 5, "release-١٢"):
        assert parse_room(name) is None, name


def test_clean_text_strips_controls_and_keeps_line_breaks():
    assert clean_text(" a\tb\r\nc\x00\x1b\u202e ", 100) == "a\tb\nc"


def test_clean_text_counts_characters_before_cleaning():
    with pytest.raises(Invalid, match="longer than 3"):
        clean_text("abcd", 3)
    with pytest.raises(Invalid, match="empty"):
        clean_text("\x00 \x01", 3)


def test_the_rate_limit_allows_a_burst_then_one_per_interval():
    limiter = RateLimiter(burst=3, per_s=1000.0, max_users=10)
    for _ in range(3):
        limiter.take("ann")
    with pytest.raises(RateLimited) as refused:
        limiter.take("ann")
    assert 0 < refused.value.wait_s <= 0.001 and refused.value.retry_after == 1
    limiter.take("bob")                       # another user's bucket is their own
    time.sleep(0.002)
    limiter.take("ann")


def test_the_rate_limit_keeps_a_bounded_number_of_buckets():
    limiter = RateLimiter(burst=1, per_s=0.001, max_users=2)
    for name in ("a", "b", "c"):
        limiter.take(name)
    assert len(limiter._buckets) == 2
    limiter.take("a")      # forgotten: a full bucket again


RULES = {"min_go": 2, "veto": True, "timeout_s": None, "on_timeout": "cancel",
         "exclude_initiator": False}


def votes(*choices: str) -> list[dict]:
    return [{"user": f"u{n}", "choice": c} for n, c in enumerate(choices)]


def test_the_vote_passes_at_min_go_and_fails_on_a_veto():
    assert verdict(RULES, votes("go")) is None
    assert verdict(RULES, votes("go", "go")) == "passed"
    assert verdict(RULES, votes("go", "go", "no_go")) == "failed"
    assert verdict({**RULES, "veto": False}, votes("go", "no_go", "go")) == "passed"


def test_vote_rules_get_their_defaults_and_are_validated():
    assert parse_vote({}) == {"min_go": 1, "veto": True, "timeout_s": None,
                              "on_timeout": "cancel", "exclude_initiator": False}
    for bad in ({"min_go": 0}, {"min_go": True}, {"veto": "yes"}, {"timeout_s": 0},
                {"timeout_s": 10**9}, {"on_timeout": "explode"}, {"quorum": 3}, [],
                {"exclude_initiator": 1}):
        with pytest.raises(Invalid):
            parse_vote(bad)


def test_a_strategy_keeps_its_vote_through_json():
    strategy = Strategy.parse({"preset": "canary", "vote": {"min_go": 2, "timeout_s": 60}})
    assert Strategy.parse(strategy.to_json()) == strategy
    with pytest.raises(Invalid, match="pause_after"):
        Strategy.parse({"vote": {}})
