"""Processes the benchmark starts, and how it stops them (always, by their own ids).

Every child is started in its own session, so its process group id is its pid; stopping
it signals that group only (the server and the granian worker it forked), first TERM,
then KILL after a grace period. :class:`Procs` remembers everything it started and
:meth:`Procs.stop_all` is called from ``finally``, ``atexit`` and the SIGTERM handler.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from h2lite import Control

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_nofile() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment minus OPENCIC_* (the bench decides the settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCIC_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Procs:
    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []
        atexit.register(self.stop_all)

    def spawn(
        self, cmd: list[str], *, env: dict[str, str], log_path: Path | None = None, cwd: Path = REPO
    ) -> subprocess.Popen[bytes]:
        out = log_path.open("wb") if log_path else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
            )
        finally:
            if log_path:
                out.close()  # type: ignore[union-attr]
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                print(
                    f"bench: pid {proc.pid} ignored SIGTERM for {grace:g} s; killing it",
                    file=sys.stderr,
                )
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # The group may outlive its leader (a worker still shutting down).
        _signal_group(proc.pid, signal.SIGKILL)
        if proc in self.started:
            self.started.remove(proc)

    async def astop(self, proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        """Like :meth:`stop`, but the event loop keeps running (clients stay serviced)."""
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                print(
                    f"bench: pid {proc.pid} ignored SIGTERM for {grace:g} s; killing it",
                    file=sys.stderr,
                )
                _signal_group(proc.pid, signal.SIGKILL)
        self.stop(proc, grace=5.0)  # reaps it and clears what is left of its group

    def stop_all(self) -> None:
        for proc in list(reversed(self.started)):
            try:
                self.stop(proc, grace=5.0)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"bench: could not stop pid {proc.pid}: {exc}", file=sys.stderr)

    async def start_server(
        self,
        name: str,
        cmd: list[str],
        *,
        env: dict[str, str],
        log_path: Path,
        timeout: float = 90.0,
    ) -> Server:
        proc = self.spawn(cmd, env=env, log_path=log_path)
        port = int(cmd[cmd.index("--port") + 1])
        server = Server(name, port, proc, log_path)
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} server exited with {proc.returncode}:\n{server.log_tail()}"
                )
            if await _pings(port):
                return server
            if time.monotonic() > deadline:
                self.stop(proc)
                raise RuntimeError(
                    f"{name} server did not answer /ping in {timeout:.0f} s:\n{server.log_tail()}"
                )
            await asyncio.sleep(0.25)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _pings(port: int) -> bool:
    try:
        control = await Control.connect("127.0.0.1", port)
    except (TimeoutError, OSError):
        return False
    try:
        return (await control.request("GET", "/ping", timeout=3)).status == 204
    except (TimeoutError, OSError, ConnectionError):
        return False
    finally:
        await control.close()


# ------------------------------------------------------------------------- memory


def children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            kids += [int(x) for x in text]
    except OSError:
        pass
    return kids


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def worker_pid(server_pid: int, timeout: float = 10.0) -> int:
    """The granian worker: the server's child process (the biggest one, if several)."""
    deadline = time.monotonic() + timeout
    while True:
        kids = children(server_pid)
        if kids:
            return max(kids, key=lambda p: _safe_rss(p))
        if time.monotonic() > deadline:
            raise RuntimeError(f"server pid {server_pid} has no worker process")
        time.sleep(0.1)


def _safe_rss(pid: int) -> int:
    try:
        return rss_kib(pid)
    except (OSError, RuntimeError):
        return -1


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads (resolution: one clock tick)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


async def wait_fds(pid: int, at_most: int, timeout: float) -> bool:
    """Wait (bounded) until a process holds at most ``at_most`` descriptors.

    Used after the clients hung up: the server must have seen every connection close
    before it is asked to stop, because granian's graceful stop waits for open requests
    and a downchannel never ends by itself.
    """
    deadline = time.monotonic() + timeout
    while fd_count(pid) > at_most:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def wait_quiet(
    pid: int,
    *,
    timeout: float,
    step: float = 0.5,
    windows: int = 3,
    max_cpu: float = 0.03,
    max_rss_kib: int = 1024,
) -> bool:
    """Wait (bounded) until a process has been idle for ``windows`` consecutive steps:
    at most ``max_cpu`` CPU seconds and ``max_rss_kib`` RSS change per step.

    The server renders its fixed answers in the background after start-up, and finishes
    the requests of closed connections after their sockets are gone: memory baselines,
    timed runs and SIGTERM (granian's graceful stop hangs on requests in flight) all
    wait for that to be over.
    """
    deadline = time.monotonic() + timeout
    calm = 0
    cpu, rss = cpu_seconds(pid), rss_kib(pid)
    while calm < windows:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
        try:
            cpu2, rss2 = cpu_seconds(pid), rss_kib(pid)
        except (OSError, RuntimeError):
            return False  # it is gone
        calm = calm + 1 if cpu2 - cpu <= max_cpu and abs(rss2 - rss) <= max_rss_kib else 0
        cpu, rss = cpu2, rss2
    return True


def nofile_of(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return None
