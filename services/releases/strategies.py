"""Release strategy: a ramp of batches (Ansible's `serial`), parallelism, pauses, max_fail.

Canary is `{"batches": [1, "100%"], "pause_after": [1]}`; plain parallel is one batch of
100%; rolling is a fixed batch size repeated, e.g. `[5]`.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from services.errors import Invalid

PERCENT = re.compile(r"(\d{1,3})%")     # whole string: fullmatch only
PRESETS = {
    "parallel": {"batches": ["100%"], "pause_after": []},
    "canary": {"batches": [1, "100%"], "pause_after": [1]},
}


def _size(value: Any, what: str) -> int | str:
    if isinstance(value, bool):
        raise Invalid(f"{what} must be a count or a percentage like \"20%\"")
    if isinstance(value, int) and value >= 1:
        return value
    if isinstance(value, str):
        match = PERCENT.fullmatch(value)
        if match and 1 <= int(match.group(1)) <= 100:
            return value
    raise Invalid(f"{what} must be a count ≥ 1 or a percentage from \"1%\" to \"100%\"")


VOTE_FIELDS = {"min_go", "veto", "timeout_s", "on_timeout", "exclude_initiator"}
ON_TIMEOUT = ("cancel", "promote", "wait")
VOTE_TIMEOUT_MAX_S = 7 * 24 * 3600


def parse_vote(body: Any, max_timeout_s: int = VOTE_TIMEOUT_MAX_S) -> dict | None:
    """The vote rules of a strategy, validated and with every default filled in:
    `min_go` go votes pass it; with `veto` one no-go fails it; after `timeout_s` (None:
    never) `on_timeout` cancels, promotes or keeps waiting; `exclude_initiator` keeps
    the release's own author from voting."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise Invalid("vote must be an object")
    unknown = set(body) - VOTE_FIELDS
    if unknown:
        raise Invalid(f"unknown vote field(s): {', '.join(sorted(unknown))}")
    min_go = body.get("min_go", 1)
    if isinstance(min_go, bool) or not isinstance(min_go, int) or not 1 <= min_go <= 100:
        raise Invalid("vote.min_go must be a whole number from 1 to 100")
    timeout_s = body.get("timeout_s")
    if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(
            timeout_s, (int, float)) or not 1 <= timeout_s <= max_timeout_s):
        raise Invalid(f"vote.timeout_s must be a number of seconds from 1 to {max_timeout_s}")
    on_timeout = body.get("on_timeout", "cancel")
    if on_timeout not in ON_TIMEOUT:
        raise Invalid("vote.on_timeout must be cancel, promote or wait")
    flags = {}
    for name, default in (("veto", True), ("exclude_initiator", False)):
        flags[name] = body.get(name, default)
        if not isinstance(flags[name], bool):
            raise Invalid(f"vote.{name} must be true or false")
    return {"min_go": min_go, "veto": flags["veto"], "timeout_s": timeout_s,
            "on_timeout": on_timeout, "exclude_initiator": flags["exclude_initiator"]}


def _resolve(size: int | str, total: int) -> int:
    if isinstance(size, int):
        return size
    return max(1, math.ceil(total * int(size[:-1]) / 100))


@dataclass(frozen=True)
class Strategy:
    batches: list = field(default_factory=lambda: ["100%"])
    parallel: int = 50
    pause_after: list = field(default_factory=list)
    max_fail: int | str | None = None
    auto_rollback: bool = False
    vote: dict | None = None      # go/no-go vote at each pause: see parse_vote

    @classmethod
    def parse(cls, body: Any, max_parallel: int = 1000) -> Strategy:
        """A validated strategy from JSON; `preset` may name parallel or canary."""
        if body is None:
            return cls()
        if not isinstance(body, dict):
            raise Invalid("strategy must be an object")
        unknown = set(body) - {"preset", "batches", "parallel", "pause_after", "max_fail",
                               "auto_rollback", "vote"}
        if unknown:
            raise Invalid(f"unknown strategy field(s): {', '.join(sorted(unknown))}")
        merged = {**PRESETS.get(body.get("preset", ""), {}), **body}
        if "preset" in body and body["preset"] not in PRESETS and body["preset"] != "rolling":
            raise Invalid("strategy preset must be parallel, rolling or canary")
        merged.pop("preset", None)
        batches = merged.get("batches", ["100%"])
        if not isinstance(batches, list) or not 1 <= len(batches) <= 50:
            raise Invalid("batches must be a list of 1 to 50 sizes")
        batches = [_size(item, "each batch") for item in batches]
        parallel = merged.get("parallel", 50)
        if isinstance(parallel, bool) or not isinstance(parallel, int) or not (
                1 <= parallel <= max_parallel):
            raise Invalid(f"parallel must be a whole number from 1 to {max_parallel}")
        pause_after = merged.get("pause_after", [])
        if not isinstance(pause_after, list) or any(
                isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in pause_after):
            raise Invalid("pause_after must be a list of batch numbers (1 = after the first)")
        max_fail = merged.get("max_fail")
        if max_fail is not None:
            if isinstance(max_fail, int) and not isinstance(max_fail, bool) and max_fail == 0:
                pass
            else:
                max_fail = _size(max_fail, "max_fail")
        auto_rollback = merged.get("auto_rollback", False)
        if not isinstance(auto_rollback, bool):
            raise Invalid("auto_rollback must be true or false")
        vote = parse_vote(merged.get("vote"))
        if vote is not None and not pause_after:
            raise Invalid("a vote needs pause_after: it opens when the release pauses")
        return cls(batches, parallel, sorted(set(pause_after)), max_fail, auto_rollback, vote)

    def plan(self, hosts: list[str]) -> list[list[str]]:
        """Split hosts into batches; the last size repeats until every host is placed."""
        total, placed, plan = len(hosts), 0, []
        index = 0
        while placed < total:
            size = _resolve(self.batches[min(index, len(self.batches) - 1)], total)
            plan.append(hosts[placed:placed + size])
            placed += size
            index += 1
        return plan

    def fail_limit(self, total: int) -> int | None:
        """How many failed hosts are tolerated; one more stops scheduling. None: no limit."""
        if self.max_fail is None:
            return None
        if isinstance(self.max_fail, int):
            return self.max_fail
        return math.floor(total * int(self.max_fail[:-1]) / 100)

    def to_json(self) -> dict:
        return asdict(self)
