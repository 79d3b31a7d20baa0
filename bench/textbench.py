"""Benchmark 1: TextRecognizer.Recognize round trips with h2load, full server vs bare stack.

Both servers run side by side for the whole benchmark; every (repetition, streams) pair
runs the two targets back to back, alternating which goes first, so slow drift in the
machine's noise hits both and the per-pair ratio full/bare cancels most of it.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from h2lite import USER_AGENT, Control, Fleet
from procs import (
    BENCH,
    Procs,
    clean_env,
    fd_count,
    free_port,
    wait_fds,
    wait_quiet,
    worker_pid,
)

from opencic.state.store import create_store

BOUNDARY = "bench-boundary-5f2c9a0e"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
UTTERANCE = "what time is it"
HOLDER = "separate connection, OPENCIC_CONNECTION_CHECK=lenient"


def event_body() -> bytes:
    """One TextRecognizer.Recognize event, sent as-is by every h2load request."""
    header = {
        "namespace": "TextRecognizer",
        "name": "Recognize",
        "messageId": str(uuid.uuid4()),
        "dialogRequestId": str(uuid.uuid4()),
    }
    doc = {"context": [], "event": {"header": header, "payload": {"text": UTTERANCE}}}
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="metadata"\r\n'
        "Content-Type: application/json; charset=UTF-8\r\n\r\n"
    ).encode()
    return head + json.dumps(doc).encode() + f"\r\n--{BOUNDARY}--\r\n".encode()


def find_h2load() -> str | None:
    return shutil.which("h2load")


@dataclass
class RunResult:
    target: str
    streams: int
    rep: int
    req_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    statuses: dict[str, int]
    h2load: dict[str, int]
    all_200: bool


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


_FINISHED = re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s")
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
    r"(\d+) failed, (\d+) errored, (\d+) timeout"
)
_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def parse_h2load(output: str) -> tuple[float, dict[str, int]]:
    finished = _FINISHED.search(output)
    requests = _REQUESTS.search(output)
    status = _STATUS.search(output)
    if not (finished and requests and status):
        raise RuntimeError(f"cannot read h2load's summary:\n{output[-2000:]}")
    keys = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
    counts = dict(zip(keys, map(int, requests.groups()), strict=True))
    counts.update(zip(("2xx", "3xx", "4xx", "5xx"), map(int, status.groups()), strict=True))
    return float(finished.group(1)), counts


def read_log(path: Path) -> tuple[list[float], dict[str, int]]:
    """Per-request durations (ms, sorted) and status counts from h2load's --log-file."""
    durations: list[float] = []
    statuses: dict[str, int] = {}
    for line in path.read_text().splitlines():
        cols = line.split("\t")
        if len(cols) < 3:
            continue
        statuses[cols[1]] = statuses.get(cols[1], 0) + 1
        durations.append(int(cols[2]) / 1000.0)
    durations.sort()
    return durations, statuses


@dataclass
class H2Load:
    exe: str
    procs: Procs
    workdir: Path
    duration: float
    warm_up: float

    async def run(
        self,
        target: str,
        port: int,
        streams: int,
        rep: int,
        body_file: Path,
        headers: dict[str, str],
    ) -> RunResult:
        stem = self.workdir / f"h2load-{target}-m{streams}-r{rep}"
        log, out_path = stem.with_suffix(".log"), stem.with_suffix(".out")
        cmd = [
            self.exe,
            "-c",
            "1",
            "-t",
            "1",
            "-m",
            str(streams),
            "-D",
            f"{self.duration:g}",
            "--warm-up-time",
            f"{self.warm_up:g}",
            "-d",
            str(body_file),
            "--log-file",
            str(log),
        ]
        for name, value in headers.items():
            cmd += ["-H", f"{name}: {value}"]
        cmd.append(f"http://127.0.0.1:{port}/v1/events")
        proc = self.procs.spawn(cmd, env={"PATH": "/usr/bin:/bin", "LANG": "C"}, log_path=out_path)
        limit = self.duration + self.warm_up + 30
        deadline = time.monotonic() + limit
        try:
            # Polled, not waited: the event loop keeps serving the downchannel holder, and
            # a Ctrl-C (task cancellation) stops h2load at once in ``finally``.
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"h2load did not finish in {limit:.0f} s")
                await asyncio.sleep(0.05)
        finally:
            self.procs.stop(proc)
        output = out_path.read_text(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"h2load exited with {proc.returncode}:\n{output[-2000:]}")
        req_s, counts = parse_h2load(output)
        durations, statuses = read_log(log)
        log.unlink(missing_ok=True)  # per-request logs are large; the figures are kept
        ok = (
            bool(durations)
            and set(statuses) == {"200"}
            and counts["2xx"] == counts["done"] == counts["succeeded"] == len(durations)
            and counts["failed"] == counts["errored"] == counts["timeout"] == 0
        )
        return RunResult(
            target,
            streams,
            rep,
            req_s,
            percentile(durations, 50),
            percentile(durations, 99),
            len(durations),
            statuses,
            counts,
            ok,
        )


def seconds_to_minute_window(needed: float) -> float:
    """How long to wait until ``needed`` seconds fit in the current wall-clock minute.

    "What time is it" is answered with the current minute, whose speech is synthesised
    once and then cached; a run that crossed a minute boundary would time one synthesis
    (hundreds of ms) instead of the cached path.
    """
    left = 60.0 - (time.time() % 60.0)
    return 0.0 if left >= needed else left + 0.3


# ------------------------------------------------------------------ the benchmark


async def run(
    args: Any,
    procs: Procs,
    workdir: Path,
    h2load: str,
    out: dict[str, Any],
    say: Callable[[str], None],
) -> None:
    """Fills ``out`` as it goes (an interrupted run keeps what was measured)."""
    data_dir = workdir / "text"
    data_dir.mkdir(parents=True, exist_ok=True)
    async with create_store("", data_dir) as store:
        await store.devices.ensure(["bench-text-device"])
        token = (await store.tokens.issue("bench-text-device", ttl=24 * 3600)).access_token
    log_env = {"OPENCIC_LOG_LEVEL": args.server_log_level} if args.server_log_level else {}
    full_port, bare_port = free_port(), free_port()
    full = await procs.start_server(
        "full",
        [
            sys.executable,
            "-m",
            "opencic.cli.main",
            "serve",
            "--h2c",
            "--port",
            str(full_port),
            "--data-dir",
            str(data_dir),
        ],
        env=clean_env({"OPENCIC_CONNECTION_CHECK": "lenient", **log_env}),
        log_path=workdir / "full-server.log",
    )
    worker = worker_pid(full.pid)
    fds_idle = fd_count(worker)
    holder = Fleet()
    controls: list[Control] = []
    out.update(downchannel_holder=HOLDER, runs=[], minute_wait_seconds=0.0)
    try:
        # h2load cannot hold a downchannel on its own connection: the device's downchannel
        # lives on this separate connection for the whole run (connection_check=lenient).
        await holder.open("127.0.0.1", full_port, [token], timeout=30)
        if holder.live != 1:
            raise RuntimeError(
                f"no downchannel for the device: {holder.statuses}\n{full.log_tail()}"
            )
        body = event_body()
        body_file = workdir / "event.bin"
        body_file.write_bytes(body)
        headers = {
            "authorization": f"Bearer {token}",
            "content-type": CONTENT_TYPE,
            "user-agent": USER_AGENT,
        }
        full_ctl = await Control.connect("127.0.0.1", full_port)
        controls.append(full_ctl)
        # The first request synthesises the reply's speech; later ones hit the TTS cache.
        reply = await full_ctl.request("POST", "/v1/events", headers, body, timeout=60)
        if reply.status != 200 or b'"Speak"' not in reply.body:
            raise RuntimeError(
                f"full server answered {reply.status}: {reply.body[:300]!r}\n{full.log_tail()}"
            )
        out["reply_bytes"] = len(reply.body)
        reply_file = workdir / "reply.bin"
        reply_file.write_bytes(reply.body)
        bare = await procs.start_server(
            "bare",
            [
                sys.executable,
                str(BENCH / "serve.py"),
                "bare",
                "--port",
                str(bare_port),
                "--data-dir",
                str(workdir / "bare"),
            ],
            env=clean_env(
                {
                    "BENCH_BARE_REPLY": str(reply_file),
                    **log_env,
                    "BENCH_BARE_CONTENT_TYPE": reply.headers.get("content-type", ""),
                }
            ),
            log_path=workdir / "bare-server.log",
        )
        bare_ctl = await Control.connect("127.0.0.1", bare_port)
        controls.append(bare_ctl)
        check = await bare_ctl.request("POST", "/v1/events", headers, body)
        if check.status != 200 or len(check.body) != len(reply.body):
            raise RuntimeError(f"bare server answered {check.status} with {len(check.body)} bytes")
        say(
            f"  reply: {len(reply.body)} bytes (Speak + MP3 + RenderText); the bare app returns "
            "the same bytes"
        )

        # The full server renders its fixed answers in the background after start-up:
        # measuring before that is over would time the synthesis too.
        for pid in (worker, worker_pid(bare.pid)):
            if not await wait_quiet(pid, timeout=120.0):
                say(f"  WARNING: server worker {pid} did not settle in 120 s")
        runner = H2Load(h2load, procs, workdir, args.duration, args.warm_up)
        ports = {"full": full_port, "bare": bare_port}
        for rep in range(args.reps):
            for i, streams in enumerate(args.streams):
                order = ("bare", "full") if (rep + i) % 2 == 0 else ("full", "bare")
                for target in order:
                    if target == "full":
                        pause = seconds_to_minute_window(args.duration + args.warm_up + 3)
                        if pause:
                            await asyncio.sleep(pause)
                            out["minute_wait_seconds"] = round(
                                out["minute_wait_seconds"] + pause, 1
                            )
                        warm = await full_ctl.request(
                            "POST", "/v1/events", headers, body, timeout=60
                        )
                        if warm.status != 200:
                            raise RuntimeError(f"warm-up request got {warm.status}")
                        if holder.live != 1:
                            raise RuntimeError("the device's downchannel closed during the run")
                    r = await runner.run(target, ports[target], streams, rep, body_file, headers)
                    out["runs"].append(asdict(r))
                    flag = "" if r.all_200 else f"  NOT ALL 200: {r.statuses} {r.h2load}"
                    say(
                        f"  rep {rep + 1} {target:4} m={streams:<3} {r.req_per_s:9.1f} req/s  "
                        f"p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms  "
                        f"({r.requests} requests){flag}"
                    )
        await bare_ctl.close()
        controls.remove(bare_ctl)
        await asyncio.sleep(0.1)
        await procs.astop(bare.process)
    finally:
        for ctl in controls:
            await ctl.close()
        await holder.aclose()
        # granian's graceful stop waits for open requests; the downchannel must be gone.
        await wait_fds(worker, fds_idle, timeout=10.0)
        await wait_quiet(worker, timeout=15.0)  # its handlers end after the sockets
        await procs.astop(full.process)
        out["summary"] = summarise(out["runs"])


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per (streams, target) and the median of the paired ratios full/bare."""
    out: dict[str, Any] = {}
    for streams in sorted({r["streams"] for r in runs}):
        row: dict[str, Any] = {}
        for target in ("full", "bare"):
            mine = [r for r in runs if r["target"] == target and r["streams"] == streams]
            if mine:
                row[target] = {
                    "req_per_s_median": round(statistics.median(r["req_per_s"] for r in mine), 1),
                    "p50_ms_median": round(statistics.median(r["p50_ms"] for r in mine), 2),
                    "p99_ms_median": round(statistics.median(r["p99_ms"] for r in mine), 2),
                    "reps": len(mine),
                    "all_200": all(r["all_200"] for r in mine),
                }
        full = {
            r["rep"]: r["req_per_s"]
            for r in runs
            if r["target"] == "full" and r["streams"] == streams
        }
        bare = {
            r["rep"]: r["req_per_s"]
            for r in runs
            if r["target"] == "bare" and r["streams"] == streams
        }
        ratios = [full[k] / bare[k] for k in full if bare.get(k)]
        if ratios:
            # The two runs of one repetition are back to back: their ratio cancels drift.
            row["ratio_full_bare_median"] = round(statistics.median(ratios), 3)
        out[str(streams)] = row
    return out
