"""Ansible inventories (INI and YAML) read into Ferry host documents.

Only the parsing lives here; `HostService.import_inventory` validates and stores the result
all or nothing. Groups follow Ansible's rules: a host belongs to the groups that list it
and to every ancestor of those through `children`; variables are inherited from ancestor
groups to descendants, a host's own win. `ansible_host`, `ansible_port`, `ansible_user` and
`ansible_ssh_private_key_file` become the host's address, port, user and key_path; other
`ansible_*` variables mean nothing to Ferry and are reported as ignored; the rest become the
host's variables (as strings: hooks see them as environment variables). Errors name the line
(INI, and YAML syntax) or the host and group (YAML structure).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from services.errors import Invalid

FIELD_OF = {"ansible_host": "address", "ansible_ssh_host": "address",
            "ansible_port": "port", "ansible_ssh_port": "port",
            "ansible_user": "user", "ansible_ssh_user": "user",
            "ansible_ssh_private_key_file": "key_path"}
IMPLICIT_GROUPS = ("all", "ungrouped")
SECTION = re.compile(r"\[([^\]\s:]+)(?::(vars|children))?\]\s*")
YAML_START = re.compile(r"[\w.-]+:\s*(#.*)?")
HOST_RANGE = re.compile(r"\[(\d+):(\d+)(?::(\d+))?\]")


@dataclass
class Inventory:
    """Groups as Ansible sees them, before they are turned into host documents."""

    max_hosts: int
    group_hosts: dict[str, list[str]] = field(default_factory=dict)
    group_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    host_vars: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_host(self, group: str, name: str, variables: dict[str, Any], where: str) -> None:
        if name not in self.host_vars:
            if len(self.host_vars) >= self.max_hosts:
                raise Invalid(f"{where}: more than {self.max_hosts} hosts")
            self.host_vars[name] = {}
        self.host_vars[name].update(variables)
        self.group_hosts.setdefault(group, [])
        if name not in self.group_hosts[group]:
            self.group_hosts[group].append(name)

    def ancestors(self, group: str) -> list[str]:
        """`group`'s ancestors through `children`, nearest first (cycles are an error)."""
        parents = {child: [] for child in self.children}
        for parent, kids in self.children.items():
            for kid in kids:
                parents.setdefault(kid, []).append(parent)
        order, frontier, seen = [], [group], {group}
        while frontier:
            nxt = []
            for current in frontier:
                for parent in parents.get(current, []):
                    if parent == group:
                        raise Invalid(f"group {group!r} is its own ancestor through children")
                    if parent not in seen:
                        seen.add(parent)
                        order.append(parent)
                        nxt.append(parent)
            frontier = nxt
        return order

    def hosts(self) -> tuple[list[dict], list[str]]:
        """Host documents for HostService, and the ansible_* variable names ignored."""
        groups_of: dict[str, list[str]] = {name: [] for name in self.host_vars}
        for group, names in self.group_hosts.items():
            for name in names:
                groups_of[name].append(group)
        ignored: set[str] = set()
        result = []
        for name, own in self.host_vars.items():
            direct = groups_of[name]
            lineage: list[str] = []
            for group in direct:
                for member in (group, *self.ancestors(group)):
                    if member not in lineage:
                        lineage.append(member)
            merged: dict[str, Any] = dict(self.group_vars.get("all", {}))
            for group in reversed(lineage):        # farthest ancestor first, nearest wins
                merged.update(self.group_vars.get(group, {}))
            merged.update(own)
            result.append(_host_document(name, [g for g in lineage
                                                if g not in IMPLICIT_GROUPS], merged, ignored))
        return result, sorted(ignored)


def _host_document(name: str, groups: list[str], merged: dict[str, Any],
                   ignored: set[str]) -> dict:
    doc: dict[str, Any] = {"name": name, "address": name, "groups": groups}
    variables: dict[str, str] = {}
    for key, value in merged.items():
        if key in FIELD_OF:
            doc[FIELD_OF[key]] = _port(name, value) if FIELD_OF[key] == "port" else str(value)
        elif key.startswith("ansible_"):
            ignored.add(key)
        else:
            variables[key] = _as_text(value)
    if variables:
        doc["variables"] = variables
    return doc


def _port(host: str, value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise Invalid(f"host {host}: ansible_port {str(value)[:20]!r} is not a number") \
            from None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return "" if value is None else str(value)


def detect_format(text: str) -> str:
    """"yaml" when the first meaningful line looks like YAML (`all:`, `---`), else "ini"."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        return "yaml" if stripped == "---" or YAML_START.fullmatch(stripped) else "ini"
    return "ini"


def parse(text: str, fmt: str, max_hosts: int) -> tuple[list[dict], list[str]]:
    """Host documents (unvalidated) and the ignored ansible_* names, from an inventory."""
    if fmt == "auto":
        fmt = detect_format(text)
    inventory = Inventory(max_hosts)
    if fmt == "ini":
        _read_ini(text, inventory)
    elif fmt == "yaml":
        _read_yaml(text, inventory)
    else:
        raise Invalid("format must be ini, yaml or auto")
    if not inventory.host_vars:
        raise Invalid("the inventory lists no hosts")
    return inventory.hosts()


# -- INI ------------------------------------------------------------------------------------

def _read_ini(text: str, inventory: Inventory) -> None:
    group, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        where = f"line {number}"
        if line.startswith("["):
            match = SECTION.fullmatch(line)
            if not match:
                raise Invalid(f"{where}: not a section header: {line[:60]!r}")
            group, kind = match.group(1), match.group(2) or "hosts"
            inventory.group_hosts.setdefault(group, []) if kind == "hosts" else None
            continue
        words = _split(line, where)
        if kind == "children":
            if len(words) != 1:
                raise Invalid(f"{where}: a [{group}:children] line names one group")
            inventory.children.setdefault(group, []).append(words[0])
        elif kind == "vars":
            key, value = _assignment(line, where)
            inventory.group_vars.setdefault(group, {})[key] = value
        else:
            variables = dict(_assignment(word, where) for word in words[1:])
            for name in _expand(words[0], where):
                inventory.add_host(group, name, variables, where)


def _split(line: str, where: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError as error:
        raise Invalid(f"{where}: {error}") from None


def _assignment(text: str, where: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise Invalid(f"{where}: expected key=value, got {text[:60]!r}")
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return key.strip(), value


def _expand(pattern: str, where: str) -> Iterable[str]:
    """Ansible's numeric host ranges: web[01:03] → web01, web02, web03."""
    match = HOST_RANGE.search(pattern)
    if not match:
        return [pattern]
    first, last, step = match.group(1), match.group(2), int(match.group(3) or 1)
    if int(last) < int(first) or step < 1 or (int(last) - int(first)) // step > 100_000:
        raise Invalid(f"{where}: bad host range {match.group(0)}")
    width = len(first) if first.startswith("0") else 0
    names = []
    for value in range(int(first), int(last) + 1, step):
        names.extend(_expand(pattern[:match.start()] + str(value).zfill(width)
                             + pattern[match.end():], where))
    return names


# -- YAML -----------------------------------------------------------------------------------

class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors and aliases: an alias bomb cannot expand in memory."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise Invalid(f"line {event.start_mark.line + 1}: YAML aliases are not accepted")
        return super().compose_node(parent, index)


def _read_yaml(text: str, inventory: Inventory) -> None:
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = f"line {mark.line + 1}: " if mark else ""
        raise Invalid(f"{line}not valid YAML: {error.problem or error}") from None
    except yaml.YAMLError as error:
        raise Invalid(f"not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise Invalid("a YAML inventory is a mapping of groups (e.g. all: {children: …})")
    for group, body in data.items():
        _read_group(inventory, str(group), body, depth=0)


def _read_group(inventory: Inventory, group: str, body: Any, depth: int) -> None:
    if depth > 32:
        raise Invalid(f"group {group}: children nested too deep")
    if body is None:
        inventory.group_hosts.setdefault(group, [])
        return
    if not isinstance(body, dict) or set(body) - {"hosts", "vars", "children"}:
        raise Invalid(f"group {group}: expected hosts, vars and children")
    inventory.group_hosts.setdefault(group, [])
    hosts = body.get("hosts") or {}
    if not isinstance(hosts, dict):
        raise Invalid(f"group {group}: hosts must be a mapping of host names")
    for name, variables in hosts.items():
        if variables is not None and not isinstance(variables, dict):
            raise Invalid(f"host {name} in group {group}: variables must be a mapping")
        for expanded in _expand(str(name), f"group {group}"):
            inventory.add_host(group, expanded, variables or {}, f"group {group}")
    group_vars = body.get("vars") or {}
    if not isinstance(group_vars, dict):
        raise Invalid(f"group {group}: vars must be a mapping")
    inventory.group_vars.setdefault(group, {}).update(group_vars)
    children = body.get("children") or {}
    if not isinstance(children, dict):
        raise Invalid(f"group {group}: children must be a mapping of groups")
    for child, child_body in children.items():
        inventory.children.setdefault(group, []).append(str(child))
        _read_group(inventory, str(child), child_body, depth + 1)
