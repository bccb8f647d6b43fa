"""CPU accounting for a fleet: what its processes, and every child they ran, spent.

A fleet's hosts run short-lived commands (a shell, `tar`, `sha256sum`) whose CPU time is
most of what a deploy costs a host. Two ways to count it:
- a cgroup v2 of the fleet's own (`CpuGroup`): the kernel adds up the CPU of every process
  ever in it, exited or not (`cpu.stat` usage_usec). Exact; needs a writable cgroup2 mount.
- otherwise `tree_cpu_ms`: utime+stime+cutime+cstime of every live process under the
  fleet's roots. Exited children count once reaped by a parent in the tree, which is how
  sshd and the simulator wait for theirs.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_serial = itertools.count()


def _cgroup2_root() -> Path | None:
    """Where this process's cgroup v2 sits in the file system, if there is one to write."""
    mount = None
    with contextlib.suppress(OSError), open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                mount = Path(fields[1])
                break
    if mount is None:
        return None
    own = "/"
    with contextlib.suppress(OSError), open("/proc/self/cgroup") as groups:
        for line in groups:
            if line.startswith("0::"):
                own = line[3:].strip()
    base = mount / own.lstrip("/")
    return base if os.access(base, os.W_OK) else None


class CpuGroup:
    """A cgroup v2 of its own: processes put in it, and their children, are counted."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, label: str) -> CpuGroup | None:
        """A new, empty group; None when no cgroup v2 mount is writable here."""
        root = _cgroup2_root()
        if root is None:
            return None
        _sweep(root)
        path = root / f"ferry-{label}-{os.getpid()}-{next(_serial)}"
        try:
            path.mkdir()
        except OSError:
            return None
        return cls(path)

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def add(self, pid: int) -> None:
        Path(self.procs_file).write_text(f"{pid}\n")

    def usage_ms(self) -> float:
        """CPU time of every process that was ever in the group, in milliseconds."""
        for line in (self.path / "cpu.stat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "usage_usec":
                return int(value) / 1000
        return 0.0

    def pids(self) -> list[int]:
        with contextlib.suppress(OSError):
            return [int(p) for p in Path(self.procs_file).read_text().split()]
        return []

    def kill(self) -> None:
        """SIGKILL whatever is still in the group (its members only: they are ours)."""
        try:
            (self.path / "cgroup.kill").write_text("1\n")
        except OSError:  # kernels before 5.14: one by one
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Remove the (empty) group; a member still exiting gets a moment to go."""
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                self.kill()
                time.sleep(0.05)


def _sweep(root: Path) -> None:
    """Remove the empty groups a fleet killed outright left behind (its PID is gone)."""
    for group in root.glob("ferry-*-*-*"):
        owner = group.name.rsplit("-", 2)[-2]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            with contextlib.suppress(OSError):
                group.rmdir()  # fails, and is kept, while anything is still in it


def _stat(pid: int) -> tuple[int, list[str]] | None:
    """(parent pid, fields after the command name) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields


def descendants(roots: list[int]) -> list[int]:
    """The live processes under `roots`, roots included."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def tree_cpu_ms(roots: list[int]) -> float:
    """utime+stime+cutime+cstime of every live process under `roots`, in milliseconds."""
    ticks = 0
    for pid in descendants(roots):
        stat = _stat(pid)
        if stat is not None:  # fields[11:15]: utime stime cutime cstime
            ticks += sum(int(v) for v in stat[1][11:15])
    return ticks * 1000 / _TICKS


def process_cpu_ms(pid: int) -> float:
    """utime+stime of one process (its own threads; not its children)."""
    stat = _stat(pid)
    return sum(int(v) for v in stat[1][11:13]) * 1000 / _TICKS if stat else 0.0


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak RSS (VmHWM) of a process; unlike ru_maxrss it does not inherit the parent's."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0
