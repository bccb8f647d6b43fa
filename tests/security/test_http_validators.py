"""Validators match whole strings: a trailing newline ("hx\\n") is refused everywhere, and
the source holds no `re.match`/`.match(` validator or `$`-anchored pattern that would
let one through again."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from services.registry import validation

ROOT = Path(__file__).resolve().parent.parent.parent
HOST = {"name": "h", "address": "127.0.0.1"}
PROJECT = {"name": "p", "repo_url": "https://example.com/r.git", "deploy_path": "/srv/p"}

# Prefix parsers, not validators: `scheme://` at the start of a URL that is validated
# whole elsewhere, and asyncssh's known_hosts lookup (not a regular expression).
PREFIX_MATCHES = {("services/git/refs.py", "SCHEME"), ("services/git/runner.py", "SCHEME"),
                  ("services/git/mirrors.py", "SCHEME"), ("services/ssh/hostkeys.py", None)}


@pytest.mark.parametrize("field, value", [
    ("name", "hx\n"), ("address", "web-1\n"), ("address", "10.0.0.1\n"), ("user", "deploy\n"),
    ("groups", ["web\n"]), ("variables", {"X\n": "1"}), ("variables", {"X": "a\x00b"}),
    ("jump_host", "j@bastion\n"), ("key_path", "/k\x1b[2J"),
])
async def test_a_host_field_with_a_trailing_newline_or_control_gets_400(api, field, value):
    status, body = await api.post("/api/hosts", {**HOST, field: value})
    assert status == 400 and body["message"]
    _, listing = await api.get("/api/hosts")
    assert listing["hosts"] == []


@pytest.mark.parametrize("field, value", [
    ("name", "pnl\n"), ("environment", "prod\n"), ("deploy_path", "/etc\n"),
    ("deploy_path", "/srv/app\n"), ("strategy", {"batches": ["100%\n"]}),
    ("hosts", ["web\n"]), ("description", "a\x00b"), ("hooks", {"after_release": "x\x00"}),
    ("hooks", {"after_release": "echo ok # \u202e;rm -rf ~\u202c"}),
])
async def test_a_project_field_with_a_trailing_newline_or_nul_gets_400(api, field, value):
    status, body = await api.post("/api/projects", {**PROJECT, field: value})
    assert status == 400 and body["message"]
    _, listing = await api.get("/api/projects")
    assert listing["projects"] == []


async def test_a_release_of_a_ref_with_a_trailing_newline_gets_400(api):
    await api.post("/api/hosts", HOST)
    await api.post("/api/projects", PROJECT)
    status, body = await api.post("/api/releases", {"project": "p", "ref": "main\n",
                                                    "hosts": ["h"]})
    assert status == 400 and "ref" in body["message"]


async def test_a_user_name_with_a_trailing_newline_is_refused(services):
    with pytest.raises(ValueError):
        await services.auth.create_user("bob\n", "long-enough-password", "viewer")


@pytest.mark.parametrize("value", ["x\n", "x\r", "\nx", "x\x00", 5, None])
def test_matches_takes_only_whole_strings(value):
    assert not validation.matches(validation.NAME, value)
    assert validation.matches(validation.NAME, "x")


def _python_files() -> list[Path]:
    return sorted(p for folder in ("services", "handlers") for p in (ROOT / folder).rglob("*.py"))


def test_no_validator_uses_match_instead_of_fullmatch():
    found = []
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "match"):
                continue
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else None
            if name == "re" or (rel, name) not in PREFIX_MATCHES:
                found.append(f"{rel}:{node.lineno} {ast.unparse(node)[:60]}")
    assert not found, "use validation.matches (re.fullmatch) instead:\n" + "\n".join(found)


def test_no_pattern_is_anchored_with_a_dollar_that_lets_a_newline_through():
    found = []
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                    and node.func.attr in ("compile", "fullmatch", "search", "match")
                    and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                    and node.args[0].value.rstrip(")").endswith("$")):
                found.append(f"{rel}:{node.lineno} {node.args[0].value[-30:]!r}")
    assert not found, "anchor with fullmatch, not '$':\n" + "\n".join(found)
