"""Ferry as a real process for tests that signal, kill or starve it: `server.py` with its
own embedded database, in a session of its own as a terminal would run it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from services.embedded_db import free_port
from tests.conftest import ROOT, Api
from tests.pids import command_line

PASSWORD = "process-test-password"


class Ferry:
    """`server.py` in a session of its own, as a terminal would run it: a Ctrl-C there
    reaches the whole process group, which `signal_group` reproduces."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.extra = extra
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    async def start(self) -> Api:
        self.process = subprocess.Popen(
            [sys.executable, "server.py", "--data-dir", str(self.data_dir), "--port",
             str(self.port), "--admin-password", PASSWORD, "--log-level", "WARNING",
             "--allow-file-urls", *self.extra],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            start_new_session=True)
        api = Api(f"http://127.0.0.1:{self.port}", None)
        for _ in range(1200):
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                status, body = await api.post("/api/session",
                                              {"name": "admin", "password": PASSWORD})
                if status == 201:
                    api.token = body["token"]
                    return api
            except OSError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("server did not answer")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    async def signal_group(self, signum: signal.Signals) -> int:
        os.killpg(self.process.pid, signum)
        return await asyncio.to_thread(self.process.wait, 60)

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def database(self) -> psutil.Process:
        """The embedded database child."""
        return next(p for p in self.descendants() if "secantus" in command_line(p))
