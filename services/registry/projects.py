"""The project registry: repository, environment, deploy path, hooks, health check, strategy."""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from services.errors import Conflict, Invalid, NotFound
from services.git.mirrors import GitError, GitService
from services.git.refs import redact_url, validate_ref, validate_repo_url
from services.registry import validation as check
from services.releases import approval, freeze
from services.releases.strategies import Strategy
from services.settings import Settings
from services.store import Store, utcnow

HOOKS = ("before_checkout", "after_checkout", "before_release", "after_release")
HOOK_MAX_BYTES = 64 * 1024
FIELDS = ("name", "repo_url", "environment", "deploy_path", "keep_releases", "hooks",
          "health_check", "strategy", "hosts", "groups", "submodules", "description",
          "approval", "freezes")


def public_project(doc: dict) -> dict:
    """A project as the API shows it; credentials in the URL are never returned."""
    result = {key: doc.get(key) for key in (*FIELDS, "created_at", "updated_at")}
    result["repo_url"] = redact_url(doc["repo_url"])
    return result


class ProjectService:
    """Validates and stores projects; lists their refs and commits through git."""

    def __init__(self, settings: Settings, store: Store, git: GitService) -> None:
        self.settings = settings
        self.store = store
        self.git = git

    def validate(self, body: dict, *, partial: bool = False) -> dict:
        unknown = set(body) - set(FIELDS)
        if unknown:
            raise Invalid(f"unknown project field(s): {', '.join(sorted(unknown))}")
        defaults: dict[str, Any] = {
            "environment": "production", "keep_releases": self.settings.default_keep_releases,
            "hooks": {}, "health_check": None, "strategy": None, "hosts": [], "groups": [],
            "submodules": False, "description": "", "approval": None, "freezes": []}
        values = body if partial else {**defaults, **body}
        doc: dict[str, Any] = {}
        for key, value in values.items():
            doc[key] = self._field(key, value)
        if not partial:
            for required in ("name", "repo_url", "deploy_path"):
                if required not in doc:
                    raise Invalid(f"{required} is required")
        return doc

    def _field(self, key: str, value: Any) -> Any:
        if key in ("name", "environment"):
            return check.name(value, key)
        if key == "repo_url":
            try:
                return validate_repo_url(value, allow_file=self.settings.git_allow_file_urls)
            except ValueError as error:
                raise Invalid(str(error)) from None
        if key == "deploy_path":
            return check.deploy_path(value)
        if key == "keep_releases":
            return check.integer(value, "keep_releases", 1, 100)
        if key == "hooks":
            return self._hooks(value)
        if key == "health_check":
            return self._health_check(value)
        if key == "strategy":
            return None if value is None else Strategy.parse(value).to_json()
        if key in ("hosts", "groups"):
            return check.name_list(value, key, self.settings.max_hosts_per_release)
        if key == "approval":
            return approval.validate(value, self.settings)
        if key == "freezes":
            return freeze.validate(value, self.settings)
        if key == "submodules":
            if not isinstance(value, bool):
                raise Invalid("submodules must be true or false")
            return value
        return check.text(value, key, 2000)

    def _hooks(self, value: Any) -> dict:
        if not isinstance(value, dict) or set(value) - set(HOOKS):
            raise Invalid(f"hooks must be an object with keys among {', '.join(HOOKS)}")
        return {key: check.text(script, f"hook {key}", HOOK_MAX_BYTES)
                for key, script in value.items() if script}

    def _health_check(self, value: Any) -> dict | None:
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) - {"command", "url", "retries",
                                                         "interval_s", "timeout_s"}:
            raise Invalid("health_check takes command or url, retries, interval_s, timeout_s")
        if bool(value.get("command")) == bool(value.get("url")):
            raise Invalid("health_check needs exactly one of command or url")
        result: dict[str, Any] = {}
        if value.get("command"):
            result["command"] = check.text(value["command"], "health_check.command", 4096)
        else:
            url = check.text(value["url"], "health_check.url", 2048)
            if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
                raise Invalid("health_check.url must be an http:// or https:// URL")
            result["url"] = url
        result["retries"] = check.integer(value.get("retries", self.settings.verify_retries),
                                          "health_check.retries", 1, 100)
        interval = value.get("interval_s", self.settings.verify_interval_s)
        timeout = value.get("timeout_s", self.settings.verify_timeout_s)
        for what, number in (("interval_s", interval), ("timeout_s", timeout)):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not (
                    0 <= number <= 600):
                raise Invalid(f"health_check.{what} must be a number of seconds up to 600")
        result["interval_s"], result["timeout_s"] = float(interval), float(timeout)
        return result

    async def _check_url(self, doc: dict) -> None:
        """The outbound address policy for a URL being saved (checked again at each fetch)."""
        if "repo_url" in doc:
            try:
                await self.git.check_url(doc["repo_url"])
            except GitError as error:
                raise Invalid(str(error)) from None

    async def create(self, body: dict) -> dict:
        doc = self.validate(body)
        await self._check_url(doc)
        doc["created_at"] = doc["updated_at"] = utcnow()
        try:
            await self.store.projects.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(f"a project named {doc['name']!r} already exists") from None
        return public_project(doc)

    async def get(self, name: str) -> dict:
        doc = await self.store.projects.find_one({"name": name})
        if doc is None:
            raise NotFound(f"no project named {name!r}")
        return doc

    async def exists(self, name: str) -> bool:
        return await self.store.projects.count_documents({"name": name}, limit=1) > 0

    async def list(self, among: set[str] | None = None) -> list[dict]:
        """Every project by name, or only those named in `among` (what a user may see)."""
        query = {} if among is None else {"name": {"$in": sorted(among)}}
        return [public_project(doc) async for doc in self.store.projects.find(query).sort(
            "name", 1)]

    async def update(self, name: str, body: dict) -> dict:
        current = await self.get(name)
        if isinstance(body, dict) and body.get("repo_url") == redact_url(current["repo_url"]):
            # The settings form sends back the URL as shown (credentials as ***): unchanged.
            body = {key: value for key, value in body.items() if key != "repo_url"}
        changes = self.validate(body, partial=True)
        if changes.get("name", name) != name:
            raise Invalid("a project cannot be renamed")
        await self._check_url(changes)
        changes["updated_at"] = utcnow()
        doc = await self.store.projects.find_one_and_update(
            {"name": name}, {"$set": changes}, return_document=True)
        if doc is None:
            raise NotFound(f"no project named {name!r}")
        return public_project(doc)

    async def delete(self, name: str) -> None:
        result = await self.store.projects.delete_one({"name": name})
        if not result.deleted_count:
            raise NotFound(f"no project named {name!r}")

    async def refs(self, name: str) -> dict:
        """Branches and tags as the mirror has them, with when it was fetched; never
        touches the network (a GET has no side effects): refresh() does."""
        project = await self.get(name)
        try:
            return {**await self.git.list_refs(project), **await self.git.mirror_state(project)}
        except GitError as error:
            raise Invalid(f"git: {error}") from None

    async def refresh(self, name: str) -> dict:
        """Fetch the repository now (at most once per git_refresh_min_interval_s), then
        refs() with `fetched`: whether this call fetched."""
        project = await self.get(name)
        try:
            fetched = await self.git.refresh(project)
        except GitError as error:
            raise Invalid(f"git: {error}") from None
        return {**await self.refs(name), "fetched": fetched}

    async def commits(self, name: str, ref: str | None, base: str | None) -> list[dict]:
        """Recent commits of `ref`, or the commits `base..ref` when a base is given, from
        the mirror as last fetched (no network)."""
        project = await self.get(name)
        try:
            if ref is not None:
                validate_ref(ref)
            if base is not None:
                validate_ref(base)
            if base is None:
                return await self.git.recent_commits(project, ref)
            target = await self.git.resolve(project, ref or "HEAD")
            return await self.git.commits_between(
                project, await self.git.resolve(project, base), target)
        except ValueError as error:
            raise Invalid(str(error)) from None
        except GitError as error:
            raise Invalid(f"git: {error}") from None
