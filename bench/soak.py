"""Downchannel soak: do downchannels stay open for hours and take pushes at any time?

Starts a real server (TLS, loopback), connects N devices with the SDK, and for
--minutes pushes a Notifier.ClearIndicator to all of them through the operator API
every --every seconds. Reports, per push, how many devices got it and how long the
slowest took, and how many downchannels were re-opened (should be 0). Bounded: it
stops by itself after --minutes and stops the server it started.

    python bench/soak.py --minutes 60 --devices 20 --every 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.rawh2 import RawH2
from support.server import start_server, stop_server

from opencic.client import CICClient, QueuedDirective


async def soak(args: argparse.Namespace) -> dict[str, object]:
    # start_server runs its own event loop for the readiness check: keep it off ours.
    handle = await asyncio.to_thread(start_server, Path(tempfile.mkdtemp(prefix="opencic-soak-")), tls=True)
    admin_token = (handle.data_dir / "admin.token").read_text().strip()
    received: dict[str, list[float]] = {}
    hellos: dict[str, int] = {}
    clients: list[CICClient] = []
    pushes: list[dict[str, float | int]] = []
    try:
        for i in range(args.devices):
            device = f"soak-{i}"
            received[device], hellos[device] = [], 0
            client = CICClient(handle.url, handle.create_token(device, 24 * 3600), cafile=handle.cafile)

            def on_clear(item: QueuedDirective, device: str = device) -> None:
                received[device].append(time.monotonic())

            def on_hello(item: QueuedDirective, device: str = device) -> None:
                hellos[device] += 1

            client.on("Notifier.ClearIndicator", on_clear)
            client.on("Clova.Hello", on_hello)
            await client.connect()
            clients.append(client)
        admin = await RawH2.connect(handle.host, handle.port, tls=True, cafile=handle.cafile)
        deadline = time.monotonic() + args.minutes * 60
        body = json.dumps({"devices": "all", "directives": [
            {"namespace": "Notifier", "name": "ClearIndicator", "payload": {}}]}).encode()
        n = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(min(args.every, max(0.0, deadline - time.monotonic())))
            n += 1
            sent = time.monotonic()
            resp = await admin.request("POST", "/admin/v1/push", {
                "authorization": f"Bearer {admin_token}", "content-type": "application/json"}, body)
            await asyncio.sleep(2.0)
            got = [t[-1] - sent for t in received.values() if len(t) >= n]
            row = {"push": n, "at_min": round((sent - (deadline - args.minutes * 60)) / 60, 1),
                   "status": resp.status, "delivered": len(got),
                   "slowest_ms": round(max(got) * 1000, 1) if got else -1.0}
            pushes.append(row)
            print(json.dumps(row), flush=True)
        await admin.close()
    finally:
        for client in clients:
            await client.aclose()
        await asyncio.to_thread(stop_server, handle)
    return {
        "devices": args.devices,
        "minutes": args.minutes,
        "pushes": len(pushes),
        "all_delivered": all(p["delivered"] == args.devices for p in pushes),
        "median_slowest_ms": statistics.median([float(p["slowest_ms"]) for p in pushes]) if pushes else None,
        "reconnects": sum(max(0, h - 1) for h in hellos.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--every", type=float, default=300.0, help="seconds between pushes")
    args = parser.parse_args()
    if not (0 < args.minutes <= 24 * 60 and 0 < args.devices <= 1000 and args.every >= 5):
        parser.error("bounds: 0 < minutes <= 1440, 0 < devices <= 1000, every >= 5")
    print(json.dumps(asyncio.run(soak(args))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
