"""A real OpenCIC server process on an ephemeral loopback port, for end-to-end tests.

Import from here (``from support.server import start_server``), never from
``conftest``: every conftest.py is a module named ``conftest``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.rawh2 import RawH2


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

    @property
    def cafile(self) -> str:
        return str(self.data_dir / "tls" / "cert.pem")

    def create_token(self, device_id: str, expires_in: float = 3600) -> str:
        from opencic.state.sqlite import Database
        from opencic.state.tokens import TokenStore

        db = Database.in_data_dir(self.data_dir)
        try:
            return TokenStore(db).create(device_id, expires_in)
        finally:
            db.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def connect(self) -> RawH2:
        return await RawH2.connect(self.host, self.port, tls=self.tls, cafile=self.cafile if self.tls else None)


def start_server(data_dir: Path, *, tls: bool = False, server: str = "granian",
                 env: dict[str, str] | None = None, timeout: float = 60.0,
                 port: int | None = None) -> ServerHandle:
    """``port``: reuse a port (a restart); default a free ephemeral one."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "opencic.cli.main", "serve", "--port", str(port),
           "--data-dir", str(data_dir), "--server", server]
    if not tls:
        cmd.append("--h2c")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCIC_")}
    full_env.update(env or {})
    with log_path.open("wb") as log_file:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=full_env)
    handle = ServerHandle(f"{'https' if tls else 'http'}://127.0.0.1:{port}", "127.0.0.1", port,
                          data_dir, proc, log_path, tls, env or {})
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


def stop_server(handle: ServerHandle) -> None:
    if handle.process.poll() is None:
        handle.process.terminate()
        try:
            handle.process.wait(15)
        except subprocess.TimeoutExpired:
            handle.process.kill()
            handle.process.wait(5)
