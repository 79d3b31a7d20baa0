"""Writes to a store in a loop and prints ``ack N`` after each write is acknowledged.

Run as ``python state_writer.py DATABASE DATA_DIR``; the durability test kills it with
SIGKILL mid-stream and then checks that every acknowledged item is in the database.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from opencic.state.store import create_store

DEVICE = "durable-device"


async def main(database: str, data_dir: Path) -> None:
    async with create_store(database, data_dir) as store:
        await store.devices.ensure([DEVICE])
        print("ready", flush=True)
        i = 0
        while True:
            # Two kinds of acknowledged writes: a settings report and a queued directive.
            await store.settings.put(DEVICE, {f"key-{i}": str(i)})
            await store.pending.enqueue(DEVICE, {"item": i})
            # Acknowledged only after both calls returned, i.e. after their commits.
            sys.stdout.write(f"ack {i}\n")
            sys.stdout.flush()
            i += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
