"""Planning the releases that follow an ended one: a retry deploys the same commit again
to the hosts that did not succeed; a rollback switches the hosts a release switched back
to an earlier release still kept on them. Only the plan (which hosts, which commit, which
strategy, what is recorded with it): service.py starts it, under the deploy lock.

May import: store, errors, releases (locks, records, reads, strategies).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from services.errors import Conflict, Invalid
from services.releases.locks import ACTIVE
from services.releases.reads import ReleaseReads
from services.releases.records import switched
from services.releases.strategies import Strategy

RETRYABLE = ("failed", "skipped", "cancelled", "interrupted", "pending")


@dataclass(frozen=True)
class FollowUp:
    """A release to start after `source`: its kind, hosts, commit and extra fields."""

    source: dict
    kind: str
    hosts: list[str]
    ref: str
    sha: str | None
    extra: dict = field(default_factory=dict)
    target: dict | None = None       # a rollback's: the release switched back to

    def strategy(self) -> Strategy:
        """The source's batches and parallelism; a rollback (not a retry of one) has no
        pauses, fail limit or auto-rollback."""
        strategy = Strategy.parse(self.source["strategy"])
        if self.target is not None:
            strategy = dataclasses.replace(strategy, pause_after=[], max_fail=None,
                                           auto_rollback=False)
        return strategy


async def plan_retry(reads: ReleaseReads, release_id: int) -> FollowUp:
    """The same commit again, to the hosts of `release_id` that did not succeed."""
    source = await reads.document(release_id)
    if source["state"] in ACTIVE:
        raise Conflict(f"release {release_id} is still {source['state']}")
    names = [run["host"] async for run in reads.store.host_runs.find(
        {"release_id": release_id, "state": {"$in": list(RETRYABLE)}})]
    if not names:
        raise Invalid(f"release {release_id} has no failed hosts to retry")
    kind = "rollback" if source["kind"] == "rollback" else "retry"
    extra = {"retry_of": release_id, "target_release": source.get("target_release"),
             "previous_release": source.get("previous_release"),
             "previous_sha": source.get("previous_sha")}
    return FollowUp(source, kind, names, source["ref"], source["sha"], extra)


async def plan_rollback(reads: ReleaseReads, release_id: int, to: int | None) -> FollowUp:
    """Back to release `to`, or to the last success before `release_id`, on the hosts
    `release_id` switched (the others still run what they ran before it)."""
    source = await reads.document(release_id)
    if source["state"] in ACTIVE:
        raise Conflict(f"release {release_id} is still {source['state']}; cancel it first")
    names = [run["host"] async for run in reads.store.host_runs.find(
        {"release_id": release_id}, {"host": 1, "state": 1, "stages": 1})
        if switched(run)]
    if not names:
        raise Invalid(f"release {release_id} switched no host; nothing to roll back")
    if to is None:
        target = await reads.last_success(source["project"], source["environment"],
                                          before=release_id)
        if target is None:
            raise Invalid(f"no successful release before {release_id} to roll back to")
    else:
        target = await reads.document(to)
        if target["project"] != source["project"] or target["kind"] == "rollback":
            raise Invalid(f"release {to} is not a deploy of {source['project']}")
    extra = {"target_release": target["_id"], "rollback_of": release_id,
             "previous_release": source["_id"], "previous_sha": source["sha"]}
    return FollowUp(source, "rollback", names, target["ref"], target["sha"], extra, target)
