"""Nothing acknowledged is lost: a writer process is killed with SIGKILL in the middle of
a stream of writes; after reopening, every write it acknowledged is there (both back
ends)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from opencic.state.store import create_store

WRITER = Path(__file__).resolve().parent.parent / "support" / "state_writer.py"
ACKS_BEFORE_KILL = 150


def test_acknowledged_writes_survive_sigkill(database: tuple[str, Path]) -> None:
    db, data_dir = database
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCIC_")}
    proc = subprocess.Popen([sys.executable, str(WRITER), db, str(data_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    acked: list[int] = []
    try:
        first = proc.stdout.readline()
        assert first == "ready\n", first + (proc.stderr.read() if proc.stderr else "")
        while len(acked) < ACKS_BEFORE_KILL:
            line = proc.stdout.readline()
            assert line.startswith("ack "), line + (proc.stderr.read() if proc.stderr else "")
            acked.append(int(line.split()[1]))
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the writer is inside its loop
        proc.wait(10)
        # Lines already in the pipe were acknowledged before the kill, too.
        acked += [int(line.split()[1]) for line in proc.stdout if line.startswith("ack ")]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    async def check() -> tuple[dict[str, str], list[Any]]:
        async with create_store(db, data_dir) as store:
            settings = await store.settings.get_all("durable-device")
            pending = await store.pending.fetch("durable-device", limit=1_000_000)
            return settings, [p.directive["item"] for p in pending]

    settings, items = asyncio.run(check())
    for i in acked:
        assert settings.get(f"key-{i}") == str(i), f"acknowledged setting {i} lost"
    assert set(acked) <= set(items), "acknowledged directives lost"
    assert items == sorted(items)  # the queue keeps its order across the crash
