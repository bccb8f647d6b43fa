"""What happened where: a host's releases across projects (what `current` points to per
project, and its last failures), and the commits a release ships.

Read-only views over the release and host-run documents and the project's git mirror.
A host's history is read newest first from its host runs (index host + release_id), a
page at a time; the picture of `current` is taken from the newest
`host_history_scan_max` runs at most, so a host with years of history costs a bounded read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo import DESCENDING

from services.errors import NotFound
from services.git.runner import GitError
from services.releases.records import switched

if TYPE_CHECKING:
    from services.git.mirrors import GitService
    from services.registry.projects import ProjectService
    from services.settings import Settings
    from services.store import Store

RELEASE_FIELDS = {"project": 1, "environment": 1, "kind": 1, "ref": 1, "sha": 1, "state": 1,
                  "target_release": 1, "created_by": 1}
FAILURES_SHOWN = 10


class ReleaseHistory:
    """Host pages and the commits of a release; writes nothing."""

    def __init__(self, store: Store, settings: Settings, git: GitService,
                 projects: ProjectService) -> None:
        self.store = store
        self.settings = settings
        self.git = git
        self.projects = projects

    async def host_releases(self, host: str, before: int | None, limit: int,
                            among: set[str] | None = None) -> dict:
        """A page of the host's releases, newest first (`before`: a release id, the
        cursor `next` of the previous page), with what `current` points to per project
        and the host's last failures (same on every page). Only releases of the projects
        `among`, when given (what the user may see): a page may then hold fewer."""
        limit = max(1, min(limit, self.settings.host_history_page_max))
        query: dict[str, Any] = {"host": host}
        if before is not None:
            query["release_id"] = {"$lt": before}
        runs = await self._runs(query, limit + 1)
        if not runs and before is None and await self.store.hosts.count_documents(
                {"name": host}, limit=1) == 0:
            raise NotFound(f"no host {host}")
        page = runs[:limit]
        scan = await self._runs({"host": host}, self.settings.host_history_scan_max)
        if among is not None:
            scan = [row for row in scan if row["project"] in among]
        return {"host": host,
                "releases": [row for row in page if among is None or row["project"] in among],
                "next": page[-1]["release_id"] if len(runs) > limit else None,
                "current": current_by_project(scan),
                "failures": [row for row in scan if row["state"] == "failed"][:FAILURES_SHOWN]}

    async def _runs(self, query: dict, limit: int) -> list[dict]:
        """Host runs joined with their releases, newest release first."""
        runs = [run async for run in self.store.host_runs.find(
            query, {"_id": 0, "log_lines_lost": 0}).sort("release_id", DESCENDING).limit(limit)]
        releases = {doc["_id"]: doc async for doc in self.store.releases.find(
            {"_id": {"$in": [run["release_id"] for run in runs]}}, RELEASE_FIELDS)}
        return [row for run in runs if (row := _row(run, releases.get(run["release_id"])))]

    async def commits(self, release: dict) -> dict:
        """The commits a release ships: the project's previous successful release's SHA
        up to this one's (for a rollback: the commits it takes away), at most
        `release_commits_max`, with how many there are in all."""
        target, base = release.get("sha"), release.get("previous_sha")
        undo = release["kind"] == "rollback"
        if undo:
            target, base = base, target
        result = {"release_id": release["id"], "base": base, "target": target, "undo": undo,
                  "commits": [], "total": 0, "note": None}
        if target is None or (undo and base is None):
            result["note"] = "the release has no commit yet"
            return result
        try:
            project = await self.projects.get(release["project"])
            commits, total = await self.git.commits_shipped(
                project, base, target, self.settings.release_commits_max)
        except (NotFound, GitError, ValueError) as error:
            result["note"] = f"commits unavailable: {error}"
            return result
        result.update(commits=commits, total=total)
        return result


def _row(run: dict, release: dict | None) -> dict | None:
    if release is None:
        return None
    stage = (run.get("stages") or {}).get("release") or {}
    return {"release_id": run["release_id"], "project": release["project"],
            "environment": release["environment"], "kind": release["kind"],
            "ref": release["ref"], "sha": release.get("sha"),
            "release_state": release["state"], "state": run["state"],
            "reason": run.get("reason"), "batch": run.get("batch"),
            "started_at": run.get("started_at"), "finished_at": run.get("finished_at"),
            "switched": switched(run), "switched_at": stage.get("started_at"),
            "points_to": release.get("target_release") if release["kind"] == "rollback"
            else run["release_id"], "previous": run.get("previous")}


def current_by_project(rows: list[dict]) -> list[dict]:
    """Per project and environment, the newest release that switched the host: where
    its `current` points, and since when."""
    seen: dict[tuple[str, str], dict] = {}
    for row in rows:       # newest first
        key = (row["project"], row["environment"])
        if key not in seen and row["switched"]:
            seen[key] = {"project": row["project"], "environment": row["environment"],
                         "release_id": row["points_to"], "by_release": row["release_id"],
                         "kind": row["kind"], "ref": row["ref"], "sha": row["sha"],
                         "since": row["switched_at"] or row["finished_at"]}
    return sorted(seen.values(), key=lambda entry: (entry["project"], entry["environment"]))
