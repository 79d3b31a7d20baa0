"""A real OpenCIC server process on an ephemeral loopback port, for end-to-end tests.

Import from here (``from support.server import start_server``), never from
``conftest``: every conftest.py is a module named ``conftest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from support import backend
from support.rawh2 import RawH2

if TYPE_CHECKING:
    from opencic.state.base import Store

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerHandle:
    url: str
    host: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    tls: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    # The server's ``database`` setting ("" = SQLite in the data dir): OPENCIC_DATABASE
    # if the test gave one, else the data dir's (see support.backend).
    database: str = ""

    @property
    def cafile(self) -> str:
        return str(self.data_dir / "tls" / "cert.pem")

    def with_store(self, fn: Callable[[Store], Awaitable[T]]) -> T:
        """Runs ``fn`` with the server's own store, as another process would (the CLI).

        In a thread with its own event loop: callers may be inside a running loop."""
        from opencic.state.store import create_store

        async def go() -> T:
            async with create_store(self.database, self.data_dir) as store:
                return await fn(store)

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, go()).result()

    def create_token(self, device_id: str, expires_in: float = 3600, *,
                     now: float | None = None) -> str:
        async def issue(store: Store) -> str:
            await store.devices.ensure([device_id])
            return (await store.tokens.issue(device_id, ttl=expires_in, now=now)).access_token

        return self.with_store(issue)

    def revoke_token(self, token: str) -> bool:
        async def revoke(store: Store) -> bool:
            return await store.tokens.revoke(token)

        return self.with_store(revoke)

    async def execute_sql(self, statement: str) -> None:
        """Runs one statement on the server's database from outside, under the running
        server (the fault tests take a table away and give it back)."""
        if self.database.startswith(("postgresql://", "postgres://")):
            import asyncpg

            conn = await asyncpg.connect(self.database)
            try:
                await conn.execute(statement)
            finally:
                await conn.close()
            return
        from opencic.state.store import describe

        db = sqlite3.connect(describe(self.database, self.data_dir))
        try:
            db.execute(statement)
            db.commit()
        finally:
            db.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def connect(self, local_host: str | None = None) -> RawH2:
        return await RawH2.connect(self.host, self.port, tls=self.tls,
                                   cafile=self.cafile if self.tls else None, local_host=local_host)


def start_server(data_dir: Path, *, tls: bool = False, server: str = "granian",
                 env: dict[str, str] | None = None, timeout: float = 60.0,
                 port: int | None = None) -> ServerHandle:
    """``port``: reuse a port (a restart); default a free ephemeral one.

    The state back end is the suite's (support.backend) unless ``env`` sets
    OPENCIC_DATABASE; a restart with the same ``data_dir`` finds the same database."""
    port = port or free_port()
    env = env or {}
    database = env.get("OPENCIC_DATABASE")
    if database is None:
        database = backend.database_for(data_dir)  # the server reads it from there too
    cmd = [sys.executable, "-m", "opencic.cli.main", "serve", "--port", str(port),
           "--data-dir", str(data_dir), "--server", server]
    if not tls:
        cmd.append("--h2c")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCIC_")}
    full_env.update(env)
    with log_path.open("wb") as log_file:  # the child keeps its own descriptor
        # Its own process group: granian's worker is a child process, and a test that
        # kills the server must kill it too (an orphaned worker keeps the port).
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=full_env,
                                start_new_session=True)
    handle = ServerHandle(f"{'https' if tls else 'http'}://127.0.0.1:{port}", "127.0.0.1", port,
                          data_dir, proc, log_path, tls, env, database)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{handle.log_text()}")
        if _ping(handle):
            return handle
        if time.monotonic() > deadline:
            stop_server(handle)
            raise RuntimeError(f"server did not come up in {timeout} s:\n{handle.log_text()}")
        time.sleep(0.2)


def _ping(handle: ServerHandle) -> bool:
    async def go() -> bool:
        client = await handle.connect()
        try:
            return (await client.request("GET", "/ping", timeout=2)).status == 204
        finally:
            await client.close()

    try:
        return asyncio.run(go())
    except (TimeoutError, OSError, ConnectionError):
        return False


@contextlib.contextmanager
def serving(data_dir: Path, **options: Any) -> Iterator[ServerHandle]:
    """:func:`start_server` for a ``with`` block (a fixture yields inside it); the
    server is stopped however the block ends."""
    handle = start_server(data_dir, **options)
    try:
        yield handle
    finally:
        stop_server(handle)


def stop_server(handle: ServerHandle) -> None:
    if handle.process.poll() is None:
        handle.process.terminate()
        try:
            handle.process.wait(15)
        except subprocess.TimeoutExpired:
            kill_server(handle)
    _kill_group(handle)  # nothing of the server may outlive the test


def kill_server(handle: ServerHandle) -> None:
    """SIGKILL the server and its worker at once, as a crash or power cut would."""
    _kill_group(handle)
    with contextlib.suppress(subprocess.TimeoutExpired):
        handle.process.wait(10)


def _kill_group(handle: ServerHandle) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(handle.process.pid, signal.SIGKILL)
