"""Logs and chat on a terminal: a host's log (optionally followed to the release's end) and
a chat room read live, with lines typed on a terminal sent to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from datetime import UTC, datetime

from cli.client import FerryClient
from cli.follow import FINAL

# Host output and chat text are written by others: on a terminal only colour (SGR) escapes
# pass, on a pipe none; other control bytes are dropped so nothing can drive the terminal.
SGR = re.compile(r"\x1b\[[0-9;]*m")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str, terminal: bool) -> str:
    if not terminal:
        return CONTROL.sub("", SGR.sub("", text))
    kept = SGR.findall(text)
    parts = SGR.split(text)
    out = [CONTROL.sub("", part) for part in parts]
    return "".join(part + (kept[i] if i < len(kept) else "") for i, part in enumerate(out)) + (
        "\x1b[0m" if kept else "")


async def print_log(client: FerryClient, release_id: int, host: str, *, follow: bool,
                    as_json: bool) -> None:
    terminal = sys.stdout.isatty()
    after = 0
    while True:
        page = await client.get(f"/api/releases/{release_id}/hosts/{host}/log", after=after)
        for line in page["lines"]:
            if as_json:
                print(json.dumps(line), flush=True)
            else:
                print(clean(line["line"], terminal), flush=True)
        after = page["next"]
        if page["more"]:
            continue
        if not follow:
            return
        release = await client.get(f"/api/releases/{release_id}", wait=2)
        if release["state"] in FINAL:
            final = await client.get(f"/api/releases/{release_id}/hosts/{host}/log",
                                     after=after)
            if not final["lines"]:
                return


def _format(message: dict, terminal: bool) -> str:
    when = datetime.fromtimestamp(float(message.get("ts") or 0), UTC).strftime("%H:%M:%S")
    who = message.get("user") or "?"
    text = clean(str(message.get("text", "")), terminal)
    return f"{when} * {text}" if message.get("kind") == "system" else f"{when} <{who}> {text}"


async def chat_session(client: FerryClient, room: str, *, message: str | None, history: int,
                       as_json: bool) -> None:
    path = f"/api/chat/{room}/messages"
    if message is not None:
        sent = await client.post(path, {"text": message})
        print(json.dumps(sent) if as_json else _format(sent, sys.stdout.isatty()))
        if sent.get("reply"):
            print(clean(str(sent["reply"]), sys.stdout.isatty()))
        return
    terminal = sys.stdout.isatty()
    page = await client.get(path, limit=history) if history else {"messages": [], "head": None}
    for item in page["messages"]:
        print(json.dumps(item) if as_json else _format(item, terminal), flush=True)
    head = page.get("head")
    if head is None:
        head = page["messages"][-1]["id"] if page["messages"] else 0
    sender = (asyncio.get_running_loop().create_task(_send_typed_lines(client, path))
              if sys.stdin.isatty() else None)
    try:
        events = client.events(f"chat:{room}", head)
        async with contextlib.aclosing(events):
            async for event in events:
                data = event.get("data") or {}
                item = {**data, "id": event["seq"], "ts": data.get("ts", event.get("ts"))}
                print(json.dumps(item) if as_json else _format(item, terminal), flush=True)
    finally:
        if sender is not None:
            sender.cancel()


async def _send_typed_lines(client: FerryClient, path: str) -> None:
    """Each line typed on the terminal is a message; refusals are shown, not fatal."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        if not line.strip():
            continue
        try:
            sent = await client.post(path, {"text": line.rstrip("\n")})
            if sent.get("reply"):
                print(clean(str(sent["reply"]), True), flush=True)
        except Exception as error:   # shown to the user; the session goes on
            print(f"not sent: {getattr(error, 'message', error)}", file=sys.stderr, flush=True)
