"""Hostile host fields through the real API: each is refused with a 400 that says why,
nothing is stored, nothing runs. A host's fields reach SSH options (address, port, user,
jump host), the Ferry server's filesystem (key_path) and the environment of hooks on the
hosts (variables), so each case names what it attacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.errors import Invalid
from services.registry.hosts import HostService
from services.settings import Settings

VALID = {"name": "web-1", "address": "127.0.0.1", "port": 22, "user": "deploy",
         "groups": ["web"]}
PWNED = "/tmp/ferry-hostile-fields-pwned"

HOSTILE = [
    # name: becomes a URL path segment, a log prefix and a known_hosts neighbour
    ("name", "web;touch " + PWNED, "shell command after the name"),
    ("name", "web-1\n", "trailing newline (matched by ^...$ without fullmatch)"),
    ("name", "-oProxyCommand=id", "option-looking name"),
    ("name", "../../etc", "path traversal in the name"),
    ("name", "w" * 65, "overlong name"),
    # address: the SSH destination and a known_hosts line
    ("address", "127.0.0.1;touch " + PWNED, "shell command after the address"),
    ("address", "-oProxyCommand=touch " + PWNED, "ssh option as the address"),
    ("address", "127.0.0.1\n@cert-authority * ssh-ed25519 AAAA", "known_hosts line injection"),
    ("address", "host.example\n", "trailing newline in the address"),
    ("address", "[::1]", "bracketed address"),
    ("address", "::1%lo", "IPv6 zone id"),
    ("address", "10.0.0.256", "dotted digits that are no IPv4 address"),
    ("address", "a b", "space in the address"),
    ("address", "", "empty address"),
    ("address", 2130706433, "a number for the address"),
    # port
    ("port", 0, "port 0"),
    ("port", 65536, "port past 65535"),
    ("port", "22", "port as a string"),
    ("port", True, "port as a boolean"),
    ("port", 22.5, "fractional port"),
    # user: the SSH login name
    ("user", "root;id", "shell command after the user"),
    ("user", "-oProxyCommand=id", "ssh option as the user"),
    ("user", "deploy\n", "trailing newline in the user"),
    ("user", "$(touch " + PWNED + ")", "command substitution as the user"),
    ("user", "u" * 33, "overlong user"),
    # key_path: a file the Ferry server reads
    ("key_path", "keys/id_ed25519", "relative key path"),
    ("key_path", "~/.ssh/id_rsa", "home-relative key path"),
    ("key_path", "/keys/id\x00x", "NUL in the key path"),
    ("key_path", "/keys/id\nx", "newline in the key path"),
    ("key_path", "/" + "k" * 2000, "overlong key path"),
    # jump_host: user@address:port of a second SSH hop
    ("jump_host", "-oProxyCommand=touch " + PWNED + "@h", "ssh option as the jump host"),
    ("jump_host", "deploy@bastion;id", "shell command after the jump host"),
    ("jump_host", "deploy@bastion\n", "trailing newline in the jump host"),
    ("jump_host", "deploy@bastion:99999", "jump host port past 65535"),
    ("jump_host", "deploy@bastion:0", "jump host port 0"),
    ("jump_host", "@bastion", "jump host without a user"),
    ("jump_host", "deploy@-bastion", "jump host address starting with '-'"),
    ("jump_host", "a@b c@d", "two jump hosts"),
    # variables: environment of hooks on the hosts
    ("variables", {"SHELLOPTS": "xtrace"}, "SHELLOPTS: shell options read at bash start"),
    ("variables", {"BASHOPTS": "extdebug"}, "BASHOPTS: shopt options read at bash start"),
    ("variables", {"BASH_ENV": "/tmp/x.sh"}, "BASH_ENV: a file bash runs first"),
    ("variables", {"ENV": "/tmp/x.sh"}, "ENV: a file sh runs first"),
    ("variables", {"IFS": "/"}, "IFS: word splitting"),
    ("variables", {"PS4": "$(id)"}, "PS4: expanded on every traced line"),
    ("variables", {"PROMPT_COMMAND": "id"}, "PROMPT_COMMAND"),
    ("variables", {"CDPATH": "/etc"}, "CDPATH: where cd goes"),
    ("variables", {"GLOBIGNORE": "*"}, "GLOBIGNORE"),
    ("variables", {"PATH": "/tmp"}, "PATH: which programs run"),
    ("variables", {"LD_PRELOAD": "/tmp/x.so"}, "LD_PRELOAD: code in every program"),
    ("variables", {"ld_preload": "/tmp/x.so"}, "loader variable in lower case"),
    ("variables", {"GLIBC_TUNABLES": "x"}, "GLIBC_TUNABLES: read by the loader"),
    ("variables", {"BASH_FUNC_ls%%": "() { id; }"}, "exported bash function"),
    ("variables", {"FERRY_REF": "main"}, "spoofing Ferry's own values"),
    ("variables", {"X\n": "1"}, "newline after the name"),
    ("variables", {"A=B": "1"}, "'=' in the name"),
    ("variables", {"_X": "1"}, "leading underscore"),
    ("variables", {"1X": "1"}, "leading digit"),
    ("variables", {"V" * 65: "1"}, "overlong name"),
    ("variables", {"APP": "a\x00b"}, "NUL in a value"),
    ("variables", {"APP": ["list"]}, "a list as a value"),
    ("variables", {f"V{i}": "1" for i in range(65)}, "too many variables"),
    ("variables", ["APP=1"], "variables as a list"),
]


# Through the HTTP API: one case of each field, and the shell-startup variables.
THROUGH_API = [case for case in HOSTILE if case[2] in (
    "shell command after the name", "known_hosts line injection", "port as a string",
    "ssh option as the user", "NUL in the key path", "ssh option as the jump host",
    "SHELLOPTS: shell options read at bash start", "BASHOPTS: shopt options read at bash start",
    "BASH_ENV: a file bash runs first", "newline after the name")]


@pytest.mark.parametrize("field, value, attack", HOSTILE, ids=[case[2] for case in HOSTILE])
def test_every_hostile_host_field_is_refused_by_the_one_validator(field, value, attack):
    hosts = HostService(Settings(), store=None, ssh=None)
    with pytest.raises(Invalid) as refused:
        hosts.validate({**VALID, field: value})
    assert str(refused.value)
    with pytest.raises(Invalid):
        hosts.validate({field: value}, partial=True)


@pytest.mark.parametrize("field, value, attack", THROUGH_API,
                         ids=[case[2] for case in THROUGH_API])
async def test_a_hostile_host_field_gets_a_400_and_nothing_is_stored(api, field, value, attack):
    status, body = await api.post("/api/hosts", {**VALID, field: value})
    assert status == 400, (attack, body)
    status, hosts = await api.get("/api/hosts")
    assert status == 200 and hosts_named(hosts, "web-1") == []
    status, body = await api.post("/api/hosts", {"hosts": [{**VALID, field: value}]})
    assert status == 400, (attack, body)
    assert not Path(PWNED).exists()


@pytest.mark.parametrize("field, value, attack", THROUGH_API[1:],
                         ids=[case[2] for case in THROUGH_API[1:]])
async def test_a_hostile_host_field_is_refused_on_update_too(api, field, value, attack):
    status, before = await api.post("/api/hosts", VALID)
    assert status == 201
    status, body = await api.put("/api/hosts/web-1", {field: value})
    assert status == 400, (attack, body)
    _, after = await api.get("/api/hosts/web-1")
    assert after[field] == before[field]


async def test_plain_host_variables_are_kept(api):
    variables = {"APP_ENV": "prod", "node_env": "production", "Region2": "eu-west-1"}
    status, body = await api.post("/api/hosts", {**VALID, "variables": variables})
    assert status == 201, body
    assert body["variables"] == variables


async def test_a_valid_jump_host_is_kept(api):
    status, body = await api.post("/api/hosts", {**VALID, "jump_host": "ops@10.0.0.1:2222"})
    assert status == 201 and body["jump_host"] == "ops@10.0.0.1:2222"


def hosts_named(hosts, name: str) -> list:
    items = hosts["hosts"] if isinstance(hosts, dict) else hosts
    return [host for host in items if host["name"] == name]
