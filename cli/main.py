"""`ferry`: Ferry from a terminal or a CI job.

Exit codes a CI job can act on: 0 the release succeeded (or the command did what it said),
1 it failed, was cancelled or rolled back, 2 a usage or authentication error (or the server
refused or could not be reached), 3 `--timeout` passed (the release goes on unless
`--cancel-on-timeout`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cli import config
from cli.client import ApiError, FerryClient
from cli.follow import EXIT_TIMEOUT, follow
from cli.render import display_for
from cli.streams import chat_session, print_log

EXIT_USAGE = 2


class Context:
    def __init__(self, url: str | None, output: str) -> None:
        self.credentials = config.load(url)
        self.output = output

    def client(self) -> FerryClient:
        return FerryClient(self.credentials)


def run(command: Callable[..., Coroutine]) -> Callable:
    """Run an async command; an API refusal is one line on stderr and exit code 2."""
    @functools.wraps(command)
    @click.pass_obj
    def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> None:
        try:
            code = asyncio.run(command(ctx, *args, **kwargs))
        except ApiError as error:
            click.echo(f"ferry: {error.message}" + (
                f" (HTTP {error.status})" if error.status else ""), err=True)
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            sys.exit(130)
        sys.exit(code or 0)
    return wrapper


def emit(ctx: Context, data: Any, table: Callable[[Any], Table] | None = None) -> None:
    if ctx.output == "json" or table is None:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        Console().print(table(data))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="FERRY_URL", help="Ferry's address (env FERRY_URL).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
              help="json: machine-readable output for scripts.")
@click.pass_context
def main(click_ctx: click.Context, url: str | None, output: str) -> None:
    """Ship a git ref to a fleet with Ferry, from a terminal or a CI job."""
    click_ctx.obj = Context(url, output)


@main.command()
@click.option("--user", "name", help="Sign in with this user's password (prompted).")
@click.option("--token", help="Store an API token made in Ferry's pages instead.")
@run
async def login(ctx: Context, name: str | None, token: str | None) -> int:
    """Sign in and store the token (FERRY_URL / FERRY_TOKEN override what is stored)."""
    url = ctx.credentials.url
    if token is None:
        name = name or click.prompt("User")
        password = click.prompt("Password", hide_input=True)
        session = await FerryClient(config.Credentials(url, None)).post(
            "/api/session", {"name": name, "password": password})
        token = session["token"]
    me = await FerryClient(config.Credentials(url, token)).get("/api/me")
    path = config.save(config.Credentials(url, token))
    click.echo(f"signed in to {url} as {me.get('name')} ({me.get('role')}); token in {path}")
    return 0


@main.command()
@run
async def projects(ctx: Context) -> int:
    """List projects."""
    body = await ctx.client().get("/api/projects")

    def table(data: Any) -> Table:
        out = Table("name", "environment", "repository", "deploy path")
        for project in data["projects"]:
            out.add_row(project["name"], project.get("environment", ""),
                        project.get("repo_url", ""), project.get("deploy_path", ""))
        return out
    emit(ctx, body, table)
    return 0


@main.command()
@click.option("--project", help="Only this project's releases.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@run
async def releases(ctx: Context, project: str | None, limit: int) -> int:
    """List recent releases, newest first."""
    body = await ctx.client().get("/api/releases", project=project, limit=limit)

    def table(data: Any) -> Table:
        out = Table("id", "project", "ref", "state", "by", "hosts", "duration")
        for release in data["releases"]:
            duration = release.get("duration_ms")
            out.add_row(str(release["id"]), release["project"], release["ref"],
                        release["state"], release.get("created_by") or "",
                        str(release.get("host_count", "")),
                        f"{duration / 1000:.1f}s" if duration is not None else "")
        return out
    emit(ctx, body, table)
    return 0


def _names(text: str | None) -> list[str] | None:
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def _strategy(text: str | None) -> dict | None:
    if text is None:
        return None
    if text in ("canary", "parallel"):
        return {"preset": text}
    try:
        value = json.loads(text)
    except ValueError:
        raise click.BadParameter("a preset (canary, parallel) or a JSON object") from None
    if not isinstance(value, dict):
        raise click.BadParameter("a preset (canary, parallel) or a JSON object")
    return value


@main.command()
@click.argument("project")
@click.argument("ref")
@click.option("--hosts", help="Comma-separated host names (default: the project's).")
@click.option("--groups", help="Comma-separated host groups.")
@click.option("--strategy", help='A preset (canary, parallel) or JSON, e.g. '
              '\'{"batches": [1, "100%"], "max_fail": 0}\'.')
@click.option("--wait", is_flag=True, help="Follow the release to its end; exit 0/1/3.")
@click.option("--timeout", "timeout_s", type=float,
              help="With --wait: give up following after S seconds.")
@click.option("--cancel-on-timeout", is_flag=True, help="With --timeout: cancel the release.")
@click.option("--no-websocket", is_flag=True, hidden=True, help="Long-poll only.")
@run
async def deploy(ctx: Context, project: str, ref: str, hosts: str | None, groups: str | None,
                 strategy: str | None, wait: bool, timeout_s: float | None,
                 cancel_on_timeout: bool, no_websocket: bool) -> int:
    """Release REF of PROJECT to its hosts."""
    body: dict[str, Any] = {"project": project, "ref": ref}
    for key, value in (("hosts", _names(hosts)), ("groups", _names(groups)),
                       ("strategy", _strategy(strategy))):
        if value is not None:
            body[key] = value
    client = ctx.client()
    release = await client.post("/api/releases", body)
    if not wait:
        emit(ctx, release) if ctx.output == "json" else click.echo(
            f"release {release['id']} created: {client.url}/releases/{release['id']}")
        return 0
    if ctx.output != "json":
        click.echo(f"release {release['id']}: {client.url}/releases/{release['id']}")
    return await _follow(ctx, client, release["id"], timeout_s, cancel_on_timeout,
                         no_websocket)


async def _follow(ctx: Context, client: FerryClient, release_id: int, timeout_s: float | None,
                  cancel_on_timeout: bool, no_websocket: bool) -> int:
    code, _ = await follow(client, release_id, display_for(ctx.output), timeout_s=timeout_s,
                           websocket=not no_websocket)
    if code == EXIT_TIMEOUT and cancel_on_timeout:
        await client.post(f"/api/releases/{release_id}/cancel")
        click.echo(f"release {release_id} cancelled after the timeout", err=True)
    return code


@main.command()
@click.argument("release_id", type=int)
@click.option("--timeout", "timeout_s", type=float,
              help="Give up following after S seconds (exit 3).")
@click.option("--cancel-on-timeout", is_flag=True, help="With --timeout: cancel the release.")
@click.option("--no-websocket", is_flag=True, hidden=True, help="Long-poll only.")
@run
async def watch(ctx: Context, release_id: int, timeout_s: float | None, cancel_on_timeout: bool,
                no_websocket: bool) -> int:
    """Follow a release live to its end; exit 0 succeeded, 1 otherwise, 3 on timeout."""
    return await _follow(ctx, ctx.client(), release_id, timeout_s, cancel_on_timeout,
                         no_websocket)


def _action(verb: str, doc: str) -> None:
    @click.argument("release_id", type=int)
    @run
    async def command(ctx: Context, release_id: int, **options: Any) -> int:
        body = {key: value for key, value in options.items() if value is not None} or None
        result = await ctx.client().post(f"/api/releases/{release_id}/{verb}", body)
        if ctx.output == "json":
            emit(ctx, result)
        elif verb in ("retry", "rollback"):
            click.echo(f"release {result['id']} created ({verb} of {release_id})")
        else:
            click.echo(f"release {release_id}: {verb} accepted")
        return 0
    command.__doc__ = doc
    if verb == "rollback":
        command = click.option("--to", type=int, help="The release to go back to.")(command)
    main.command(name=verb)(command)


_action("promote", "Continue a paused release.")
_action("cancel", "Cancel a release (hosts finish their current step).")
_action("retry", "Release the same commit again to the hosts that did not succeed.")
_action("rollback", "Switch the hosts a release switched back to an earlier release.")


@main.command()
@click.argument("release_id", type=int)
@click.argument("choice", type=click.Choice(["go", "nogo"]))
@click.option("--comment", "-m", help="Why.")
@run
async def vote(ctx: Context, release_id: int, choice: str, comment: str | None) -> int:
    """Vote go or no-go on a release paused for a vote."""
    body = {"choice": "go" if choice == "go" else "no_go"}
    if comment:
        body["comment"] = comment
    result = await ctx.client().post(f"/api/releases/{release_id}/vote", body)
    if ctx.output == "json":
        emit(ctx, result)
    else:
        tally = sum(1 for v in result.get("votes", []) if v["choice"] == "go")
        click.echo(f"release {release_id}: voted {choice}; vote {result.get('state')}, "
                   f"{tally} go")
    return 0


@main.command()
@click.argument("release_id", type=int)
@click.argument("host")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the release ends.")
@run
async def log(ctx: Context, release_id: int, host: str, follow: bool) -> int:
    """Print one host's log of a release."""
    await print_log(ctx.client(), release_id, host, follow=follow,
                    as_json=ctx.output == "json")
    return 0


@main.command()
@click.argument("room")
@click.option("--message", "-m", help="Send this message and exit.")
@click.option("--history", type=click.IntRange(0, 200), default=20, show_default=True)
@run
async def chat(ctx: Context, room: str, message: str | None, history: int) -> int:
    """Read a chat room live (lines typed on a terminal are sent), or send one message."""
    await chat_session(ctx.client(), room, message=message, history=history,
                       as_json=ctx.output == "json")
    return 0


@main.group()
def hosts() -> None:
    """Hosts."""


@hosts.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["auto", "ini", "yaml"]), default="auto",
              show_default=True)
@run
async def import_hosts(ctx: Context, file: Path, fmt: str) -> int:
    """Import hosts from an Ansible inventory (INI or YAML), all or nothing."""
    text = await asyncio.to_thread(file.read_text, errors="replace")
    result = await ctx.client().post("/api/hosts", {"inventory": text, "format": fmt})
    if ctx.output == "json":
        emit(ctx, result)
    else:
        click.echo(f"imported {len(result['hosts'])} hosts: "
                   + ", ".join(host["name"] for host in result["hosts"]))
        if result.get("ignored"):
            click.echo("ignored (not used by Ferry): " + ", ".join(result["ignored"]))
    return 0
