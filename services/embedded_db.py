"""Start, wait for and stop the embedded SecantusDB server as a child process."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import socket
import sys
from pathlib import Path

from pymongo import AsyncMongoClient

log = logging.getLogger("ferry.db")
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGTERM when Ferry dies, even by SIGKILL (Linux only)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port the OS considers free right now on `address`."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


class EmbeddedDatabase:
    """SecantusDB on 127.0.0.1, data under `storage_path` (":memory:" for throwaway)."""

    def __init__(self, storage_path: Path | str, *, port: int | None = None,
                 start_timeout_s: float = 60.0) -> None:
        self.storage_path = str(storage_path)
        self.port = port or free_port()
        self.start_timeout_s = start_timeout_s
        self.process: asyncio.subprocess.Process | None = None
        if self.storage_path != ":memory:":
            Path(self.storage_path).mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    async def start(self) -> str:
        """Start the child and return its URL once it answers a ping."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "secantus", "--host", "127.0.0.1",
            "--port", str(self.port), "--storage-path", self.storage_path,
            "--log-level", "WARNING",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        await self._wait_ready()
        log.info("embedded database on 127.0.0.1:%s (pid %s)", self.port, self.process.pid)
        return self.url

    async def _wait_ready(self) -> None:
        client = AsyncMongoClient(self.url, serverSelectionTimeoutMS=500)
        deadline = asyncio.get_running_loop().time() + self.start_timeout_s
        try:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(
                        f"embedded database exited with status {self.process.returncode}")
                try:
                    await client.admin.command("ping")
                    return
                except Exception:
                    if asyncio.get_running_loop().time() > deadline:
                        raise RuntimeError("embedded database did not answer in time") from None
                    await asyncio.sleep(0.1)
        finally:
            await client.close()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the child to stop (SIGTERM), then kill it after `timeout_s`."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def __aenter__(self) -> EmbeddedDatabase:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()
