"""Benchmarks 2 and 3: N idle downchannels (server RSS) and one push to all of them."""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from h2lite import Control, Fleet
from procs import (
    Procs,
    clean_env,
    cpu_seconds,
    fd_count,
    free_port,
    nofile_of,
    rss_kib,
    wait_fds,
    wait_quiet,
    worker_pid,
)

from opencic.server.admin import read_admin_token
from opencic.state.store import create_store


async def bulk_tokens(data_dir: Path, n: int, ttl: float = 24 * 3600,
                      database: str = "") -> list[str]:
    """N devices with one token each, in one transaction per table, in the store the
    bench's servers use (``database`` as in OPENCIC_DATABASE; "" = SQLite in data_dir)."""
    devices = [f"bench-device-{i:06d}" for i in range(n)]
    async with create_store(database, data_dir) as store:
        await store.devices.ensure(devices)
        return [t.access_token for t in await store.tokens.issue_many(devices, ttl=ttl)]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


async def run(
    procs: Procs,
    workdir: Path,
    result: dict[str, Any],
    *,
    n: int,
    reps: int,
    pushes: int,
    push_timeout: float,
    env_extra: dict[str, str],
    say: Any,
) -> None:
    """``reps`` fresh servers, each: open N downchannels, read RSS, 1 cold + ``pushes``
    measured pushes. Fills ``result`` as it goes (an interrupted run keeps what it has)."""
    data_dir = workdir / "fanout"
    data_dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    tokens = await bulk_tokens(data_dir, n, database=env_extra.get("OPENCIC_DATABASE", ""))
    say(f"  {n} device tokens created in {time.perf_counter() - t:.1f} s")
    result.update(requested=n, reps=[])
    try:
        for rep in range(reps):
            result["reps"].append({})
            await _one_server(
                procs,
                workdir,
                data_dir,
                tokens,
                result["reps"][-1],
                rep,
                pushes=pushes,
                push_timeout=push_timeout,
                env_extra=env_extra,
                say=say,
            )
    finally:
        summarise(result)


async def _one_server(
    procs: Procs,
    workdir: Path,
    data_dir: Path,
    tokens: list[str],
    result: dict[str, Any],
    rep: int,
    *,
    pushes: int,
    push_timeout: float,
    env_extra: dict[str, str],
    say: Any,
) -> None:
    n = len(tokens)
    port = free_port()
    server = await procs.start_server(
        "opencic",
        [
            sys.executable,
            "-m",
            "opencic.cli.main",
            "serve",
            "--h2c",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env=clean_env(env_extra),
        log_path=workdir / f"server-{rep}.log",
    )
    admin_token = read_admin_token(data_dir)
    if admin_token is None:
        raise RuntimeError(f"the server made no {data_dir}/admin.token; update bench/fanout.py")
    fleet = Fleet()
    control: Control | None = None
    worker = fds_before = 0
    try:
        worker = worker_pid(server.pid)
        server_nofile = nofile_of(worker)
        result["server_nofile_limit"] = server_nofile
        if server_nofile is not None and server_nofile < n + 64:
            say(
                f"  WARNING: the server worker may open only {server_nofile} files; "
                f"{n} downchannels need more (raise `ulimit -n`)"
            )
        # Start-up work (background pre-rendering of fixed answers) must be over.
        if not await wait_quiet(worker, timeout=120.0):
            say("  WARNING: the server worker did not settle in 120 s; the RSS baseline may be low")
        rss_before = rss_kib(worker)
        fds_before = fd_count(worker)

        open_seconds = await fleet.open("127.0.0.1", port, tokens, timeout=max(60.0, n / 100))
        await asyncio.sleep(2.0)  # let both sides settle before reading memory
        live = fleet.live
        rss_after = rss_kib(worker)
        per = round((rss_after - rss_before) / live, 2) if live else None
        result.update(
            open=live,
            failed=fleet.failed,
            statuses={str(k): v for k, v in fleet.statuses.items()},
            open_seconds=round(open_seconds, 2),
            server_rss_before_kib=rss_before,
            server_rss_after_kib=rss_after,
            rss_per_connection_kib=per,
            client_rss_kib=rss_kib(os.getpid()),
        )
        say(
            f"  rep {rep + 1}: {live}/{n} downchannels open in {open_seconds:.1f} s; worker RSS "
            f"{rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB = {per} KiB each"
        )
        if not live:
            raise RuntimeError(f"no downchannel opened; server log:\n{server.log_tail()}")

        # The measuring client's own collector must not add pauses to the figures.
        gc.collect()
        gc.freeze()
        control = await Control.connect("127.0.0.1", port)
        # The first push to fresh downchannels is slower (first write on every stream,
        # objects promoted by the collector): reported apart, not part of the median.
        result["cold_push"] = await _push(
            fleet, control, admin_token, push_timeout, "cold push", say, worker
        )
        result["pushes"] = []
        for i in range(pushes):
            result["pushes"].append(
                await _push(fleet, control, admin_token, push_timeout, f"push {i + 1}", say, worker)
            )
        result["open_after_pushes"] = fleet.live
        result["server_rss_after_pushes_kib"] = rss_kib(worker)
    finally:
        if control is not None:
            await control.close()
        await fleet.aclose()
        gc.unfreeze()
        if fds_before:
            await wait_fds(worker, fds_before + 2, timeout=30.0)
            await wait_quiet(worker, timeout=15.0)  # its handlers end after the sockets
        await procs.astop(server.process)


def summarise(result: dict[str, Any]) -> None:
    """Medians over repetitions (memory) and over all measured pushes (fan-out); a push
    that missed a device counts as infinitely slow."""
    reps = [r for r in result.get("reps", []) if "open" in r]
    if not reps:
        return
    result["open_min"] = min(r["open"] for r in reps)
    per = [r["rss_per_connection_kib"] for r in reps if r["rss_per_connection_kib"] is not None]
    if per:
        result["rss_per_connection_kib_median"] = round(statistics.median(per), 2)
    result["open_seconds_median"] = round(statistics.median(r["open_seconds"] for r in reps), 2)
    pushes = [p for r in reps for p in r.get("pushes", [])]
    colds = [r["cold_push"] for r in reps if "cold_push" in r]
    result["pushes_measured"] = len(pushes)
    result["pushes_complete"] = sum(1 for p in pushes if p["complete"])

    def median(items: list[dict[str, Any]], key: str) -> float | None:
        if not items:
            return None
        value = statistics.median(p[key] if p["complete"] else math.inf for p in items)
        return None if math.isinf(value) else round(value, 2)

    result["cold_fanout_median_ms"] = median(colds, "last_ms")
    if not pushes:
        return
    result["fanout_median_ms"] = median(pushes, "last_ms")
    result["fanout_p50_receipt_median_ms"] = median(pushes, "p50_ms")
    for key in ("api_answer_ms", "server_cpu_ms", "client_cpu_ms"):
        values = [p[key] for p in pushes if p[key] is not None]
        if not values:
            continue
        result[key.replace("_ms", "_median_ms")] = round(statistics.median(values), 1)


PUSH_PATH = "/admin/v1/push"  # the operator push API (src/opencic/server/admin.py)


def indicator(marker: str) -> dict[str, Any]:
    """A real downchannel directive; ``marker`` (unique per push) lets a client spot it."""
    return {
        "namespace": "Notifier",
        "name": "SetIndicator",
        "payload": {
            "assetPlayOrder": [marker],
            "assets": [{"assetId": marker, "url": "clova://notifier/sound/default"}],
            "light": "DEFAULT",
            "new": True,
        },
    }


async def _push(
    fleet: Fleet,
    control: Control,
    admin_token: str,
    timeout: float,
    label: str,
    say: Any,
    worker: int,
) -> dict[str, Any]:
    await asyncio.sleep(1.0)  # quiet time between pushes
    marker = f"bench-{uuid.uuid4()}"
    armed = fleet.arm(marker.encode())
    body = json.dumps({"devices": "all", "directives": [indicator(marker)]}).encode()
    headers = {"authorization": f"Bearer {admin_token}", "content-type": "application/json"}
    server_cpu, client_cpu = cpu_seconds(worker), time.process_time()
    started = time.perf_counter()
    trigger = asyncio.ensure_future(control.request("POST", PUSH_PATH, headers, body, timeout=30))
    complete = await fleet.wait_all(timeout)
    server_cpu, client_cpu = cpu_seconds(worker) - server_cpu, time.process_time() - client_cpu
    reply = await trigger
    answered = reply.answered_at - started if reply.answered_at else None
    receipts = sorted(r - started for r in fleet.receipts)
    fleet.disarm()
    if reply.status != 200:
        raise RuntimeError(f"{PUSH_PATH} answered {reply.status}: {reply.body[:300]!r}")
    info = json.loads(reply.body)
    out = {
        "armed": armed,
        "received": len(receipts),
        "server_delivered": info.get("delivered"),
        "complete": complete,
        "last_ms": _ms(receipts[-1]) if receipts else None,
        "p50_ms": _ms(receipts[len(receipts) // 2]) if receipts else None,
        "p90_ms": _ms(receipts[int(len(receipts) * 0.9)]) if receipts else None,
        # When the push API answered (it answers once every downchannel has the bytes
        # queued, before they are written).
        "api_answer_ms": _ms(answered) if answered is not None else None,
        # CPU used while the push was under way (server: 10 ms clock ticks): shows which
        # side limits the figure on a 2-core machine.
        "server_cpu_ms": _ms(server_cpu),
        "client_cpu_ms": _ms(client_cpu),
    }
    say(
        f"  {label}: {out['received']}/{armed} received, last after {out['last_ms']} ms "
        f"(median {out['p50_ms']} ms; API answered after {out['api_answer_ms']} ms; CPU server "
        f"{out['server_cpu_ms']:.0f} ms, client {out['client_cpu_ms']:.0f} ms)"
    )
    return out
