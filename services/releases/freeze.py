"""Freeze windows: the times when a project may not start a release.

A project's `freezes` is a list of windows, each in one of two forms:

- one-off: `{"start": ISO time, "end": ISO time, "reason": text}`; both times carry a UTC
  offset (`2026-12-24T00:00:00+01:00`, or `Z`), so they never depend on where Ferry runs;
- recurring: `{"cron": "0 16 * * 5", "duration_s": 230400, "timezone": "Europe/Berlin",
  "reason": text}`: a window opens at every time the five-field cron expression names, read
  in `timezone` (an IANA name, default UTC, so daylight saving time is followed), and lasts
  `duration_s` seconds (Friday 16:00 to Monday 08:00 is 64 h = 230400 s).

`active(freezes, now)` answers which window holds at `now` and when the freeze ends,
windows that overlap or follow each other without a gap counted as one freeze.

Pure functions of the project's settings and the time; may import settings, errors,
registry.validation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from services.errors import Invalid
from services.registry import validation as check
from services.settings import Settings

ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,30}(/[A-Za-z0-9_+-]{1,30}){0,2}")
CRON = re.compile(r"[0-9A-Za-z*/,-]{1,40}( [0-9A-Za-z*/,-]{1,40}){4}")
# A chain of windows is followed this far when computing when a freeze ends.
CHAIN_MAX = 200


@dataclass(frozen=True)
class Freeze:
    """The freeze holding now: the reason of the window that holds, and when it ends."""

    reason: str
    until: datetime

    def describe(self) -> str:
        return f"{self.reason!r} until {self.until.isoformat()}"

    def to_json(self) -> dict:
        return {"reason": self.reason, "until": self.until}


def parse_time(value: Any, what: str) -> datetime:
    """An ISO 8601 time with a UTC offset, as an aware UTC datetime."""
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid(f"{what} must be an ISO 8601 time with a UTC offset")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{what} must be an ISO 8601 time with a UTC offset, "
                      f"e.g. 2026-12-24T16:00:00+01:00") from None
    if parsed.tzinfo is None:
        raise Invalid(f"{what} needs a UTC offset (e.g. +01:00 or Z): "
                      "a time without one is ambiguous")
    return parsed.astimezone(UTC)


def zone(value: Any, what: str = "timezone") -> ZoneInfo:
    if not check.matches(ZONE_NAME, value):
        raise Invalid(f"{what} must be an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"{what}: unknown time zone {value!r}") from None


def validate(value: Any, settings: Settings) -> list[dict]:
    """A project's `freezes`, checked whole; each window normalised to its stored form."""
    if value is None:
        return []
    limit = settings.freeze_max_windows
    if not isinstance(value, list) or len(value) > limit:
        raise Invalid(f"freezes must be a list of at most {limit} windows")
    return [_window(item, f"freezes[{index}]", settings) for index, item in enumerate(value)]


def _window(item: Any, what: str, settings: Settings) -> dict:
    if not isinstance(item, dict):
        raise Invalid(f"{what} must be an object")
    reason = check.text(item.get("reason", ""), f"{what}.reason",
                        settings.freeze_reason_max_chars, empty=False, line=True)
    if "cron" in item:
        if set(item) - {"cron", "duration_s", "timezone", "reason"}:
            raise Invalid(f"{what}: a recurring window takes cron, duration_s, timezone, "
                          "reason")
        cron = item["cron"]
        if not check.matches(CRON, cron) or not croniter.is_valid(cron):
            raise Invalid(f"{what}.cron must be a five-field cron expression, "
                          "e.g. \"0 16 * * 5\"")
        duration = check.integer(item.get("duration_s"), f"{what}.duration_s", 60,
                                 settings.freeze_duration_max_s)
        timezone = item.get("timezone", "UTC")
        zone(timezone, f"{what}.timezone")
        return {"cron": cron, "duration_s": duration, "timezone": timezone, "reason": reason}
    if set(item) - {"start", "end", "reason"}:
        raise Invalid(f"{what}: a window takes start, end and reason (or cron, duration_s, "
                      "timezone and reason)")
    start = parse_time(item.get("start"), f"{what}.start")
    end = parse_time(item.get("end"), f"{what}.end")
    if end <= start:
        raise Invalid(f"{what}: end must be after start")
    return {"start": item["start"], "end": item["end"], "reason": reason}


def _holding(window: dict, at: datetime) -> datetime | None:
    """When `window` ends if it holds at `at` (start <= at < end), else None."""
    if "cron" in window:
        local = at.astimezone(ZoneInfo(window["timezone"]))
        # croniter's get_prev is strictly before its start; one second on includes `at`.
        opened = croniter(window["cron"], local + timedelta(seconds=1)).get_prev(datetime)
        end = opened.astimezone(UTC) + timedelta(seconds=window["duration_s"])
        return end if opened <= local and at < end else None
    start, end = parse_time(window["start"], "start"), parse_time(window["end"], "end")
    return end if start <= at < end else None


def active(freezes: list[dict] | None, now: datetime) -> Freeze | None:
    """The freeze holding at `now`, or None. Its end follows windows that overlap or meet,
    so "until" is when a release could really start."""
    holding = [(end, window) for window in freezes or []
               if (end := _holding(window, now)) is not None]
    if not holding:
        return None
    until, first = max(holding, key=lambda pair: pair[0])
    for _ in range(CHAIN_MAX):
        later = [end for window in freezes or []
                 if (end := _holding(window, until)) is not None and end > until]
        if not later:
            break
        until = max(later)
    return Freeze(first["reason"], until)
