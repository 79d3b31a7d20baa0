"""OpenCIC benchmarks (loopback only). See bench/README.md.

    python bench/run.py                                            # everything, default sizes
    python bench/run.py --downchannels 500 --duration 3 --reps 3   # a quick look

1. text round trip: h2load against the full server and the bare stack (req/s, p50/p99);
2. idle downchannels: server RSS per connection;
3. push fan-out: one push to every downchannel, time until the last device has it.

Results: a JSON file under bench/results/ and a summary on stdout. Every server and
h2load process started here is stopped on exit, Ctrl-C, SIGTERM or failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import fanout
import textbench
from procs import BENCH, REPO, Procs, raise_nofile

TARGET_RATIO = 0.90  # full req/s >= 90 % of bare
TARGET_P99_MS = 25.0  # full p99 at 100 streams
TARGET_RSS_KIB = 40.0  # per idle downchannel
TARGET_FANOUT_MS = 300.0  # one push to 10 000 downchannels


def say(text: str = "") -> None:
    print(text, flush=True)


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# ------------------------------------------------------------------ summary


def print_text(text: dict[str, Any]) -> None:
    summary = text.get("summary") or textbench.summarise(text.get("runs", []))
    say(
        f"1. Text round trip, '{textbench.UTTERANCE}' ({text.get('reply_bytes', '?')}-byte reply), "
        "1 connection, h2c, h2load"
    )
    say("   full = `opencic serve` with connection_check=lenient: the device's downchannel is held")
    say("   open on a separate connection (h2load cannot hold one on its own connection).")
    say(
        "   bare = same granian settings, minimal app: multipart parse + fixed reply of equal size."
    )
    say(
        f"   {'streams':>7} | {'full req/s':>10} {'p50 ms':>7} {'p99 ms':>7} | {'bare req/s':>10} "
        f"{'p50 ms':>7} {'p99 ms':>7} | full/bare"
    )
    for streams, row in summary.items():
        f, b = row.get("full", {}), row.get("bare", {})
        ratio = row.get("ratio_full_bare_median")
        extra = (
            f"  {mark(ratio >= TARGET_RATIO)} (>= {TARGET_RATIO:.0%})" if ratio is not None else ""
        )
        if streams == "100" and f:
            ok = f["p99_ms_median"] <= TARGET_P99_MS
            extra += f"; full p99 {mark(ok)} (<= {TARGET_P99_MS:g} ms)"
        cells = [
            _triple(f),
            _triple(b),
            f"{ratio if ratio is not None else '-':>5}{extra}",
        ]
        say(f"   {streams:>7} | " + " | ".join(cells))
    bad = [r for r in text.get("runs", []) if not r["all_200"]]
    say(
        "   every response was 200 (h2load status counts and per-request log): "
        + ("yes" if not bad else f"NO - {len(bad)} runs had other statuses: figures INVALID")
    )
    if text.get("minute_wait_seconds"):
        say(
            f"   ({text['minute_wait_seconds']} s spent waiting so no full run crossed a minute "
            "boundary: the spoken time changes every minute)"
        )


def _triple(row: dict[str, Any]) -> str:
    rate, p50, p99 = (row.get(k, 0) for k in ("req_per_s_median", "p50_ms_median", "p99_ms_median"))
    return f"{rate:10.1f} {p50:7.2f} {p99:7.2f}"


def print_downchannels(dc: dict[str, Any]) -> None:
    reps = [r for r in dc.get("reps", []) if "open" in r]
    if not reps:
        return
    n = dc["requested"]
    say(
        f"2. Idle downchannels: {n} devices, one HTTP/2 connection + downchannel each, "
        f"{len(reps)} fresh server(s)"
    )
    say(
        "   open: "
        + ", ".join(f"{r['open']}/{n}" for r in reps)
        + f" (median opening time {dc['open_seconds_median']} s)"
    )
    say(
        "   granian worker RSS before -> after: "
        + ", ".join(
            f"{r['server_rss_before_kib'] / 1024:.0f} -> {r['server_rss_after_kib'] / 1024:.0f} MiB"
            for r in reps
        )
    )
    per = dc.get("rss_per_connection_kib_median")
    if per is not None:
        each = ", ".join(
            f"{r['rss_per_connection_kib']:.1f}"
            for r in reps
            if r["rss_per_connection_kib"] is not None
        )
        say(
            f"   RSS per connection: median {per:.1f} KiB ({each})  {mark(per <= TARGET_RSS_KIB)} "
            f"(<= {TARGET_RSS_KIB:g} KiB)"
        )
    measured = dc.get("pushes_measured", 0)
    if not measured:
        return
    open_min = dc["open_min"]
    say(
        f"3. Push fan-out (trigger -> complete directive part at every client), {open_min}+ "
        f"downchannels: {dc['pushes_complete']}/{measured} measured pushes reached every device"
    )
    cold = dc.get("cold_fanout_median_ms")
    if cold is not None:
        say(f"   first (cold) push on each server, not in the median: median {cold:.1f} ms")
    med = dc.get("fanout_median_ms")
    scale = f" (the target is for 10 000; this run had {open_min})" if open_min < 10_000 else ""
    if med is None:
        say(f"   median over pushes: some device did not get it  MISS{scale}")
    else:
        say(
            f"   median over {measured} pushes, last device: {med:.1f} ms  "
            f"{mark(med <= TARGET_FANOUT_MS)} (<= {TARGET_FANOUT_MS:g} ms){scale}"
        )
        api = dc.get("api_answer_median_ms")
        say(
            f"   median device: {dc['fanout_p50_receipt_median_ms']:.1f} ms; the push API "
            f"answered after {api if api is not None else '-'} ms"
        )
        say(
            f"   CPU while a push was under way: server worker {dc['server_cpu_median_ms']:.0f} "
            f"ms, measuring client {dc['client_cpu_median_ms']:.0f} ms (2 cores shared)"
        )
    say(
        "   pushed with the operator API: POST /admin/v1/push {devices: all, Notifier.SetIndicator}"
    )


def print_summary(results: dict[str, Any]) -> None:
    say("\n=== Summary (medians over repetitions) ===")
    if results.get("text"):
        print_text(results["text"])
    if results.get("downchannels"):
        print_downchannels(results["downchannels"])


# ------------------------------------------------------------------ main


def tool_versions(h2load: str | None) -> dict[str, str]:
    out = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
    }
    with contextlib.suppress(Exception):  # informational only
        from importlib.metadata import version

        out["granian"] = version("granian")
    commands = {"h2load": [h2load or "h2load", "--version"], "commit": ["git", "rev-parse", "HEAD"]}
    for key, cmd in commands.items():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                cmd, check=False, capture_output=True, text=True, timeout=10, cwd=REPO
            )
            out[key] = done.stdout.strip()
    return out


async def amain(
    args: argparse.Namespace,
    procs: Procs,
    results: dict[str, Any],
    workdir: Path,
    h2load: str | None,
) -> None:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    if not args.skip_text:
        assert h2load is not None
        say(
            f"[1] text round trip: {args.reps} reps x streams {args.streams} x {args.duration:g} s "
            f"(+{args.warm_up:g} s warm-up) per target"
        )
        results["text"] = {}
        await textbench.run(args, procs, workdir, h2load, results["text"], say)
    if not args.skip_downchannels:
        say(
            f"[2+3] {args.dc_reps} x ({args.downchannels} idle downchannels on a fresh server, "
            f"then 1 cold + {args.pushes} measured pushes to all of them)"
        )
        log_env = {"OPENCIC_LOG_LEVEL": args.server_log_level} if args.server_log_level else {}
        log_env.update(args.server_setting)
        results["downchannels"] = {}
        await fanout.run(
            procs,
            workdir,
            results["downchannels"],
            n=args.downchannels,
            reps=args.dc_reps,
            pushes=args.pushes,
            push_timeout=args.push_timeout,
            env_extra=log_env,
            say=say,
        )


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return f"OPENCIC_{name.upper()}", value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="OpenCIC benchmarks (loopback only); see bench/README.md"
    )
    p.add_argument("--duration", type=float, default=5.0, help="h2load measuring time per run, s")
    p.add_argument("--warm-up", type=float, default=1.0, help="h2load warm-up per run, s")
    p.add_argument("--reps", type=int, default=3, help="repetitions of every run")
    p.add_argument("--streams", default="1,10,100", help="concurrent streams on the one connection")
    p.add_argument("--downchannels", type=int, default=10_000, help="idle downchannels to open")
    p.add_argument(
        "--dc-reps", type=int, default=3, help="fresh servers for benchmarks 2 and 3 (default 3)"
    )
    p.add_argument(
        "--pushes", type=int, default=3, help="measured pushes per server, after a cold one"
    )
    p.add_argument("--push-timeout", type=float, default=10.0, help="max wait per push, s")
    p.add_argument("--skip-text", action="store_true", help="skip benchmark 1")
    p.add_argument("--server-setting", action="append", default=[], type=_setting,
                   metavar="NAME=VALUE",
                   help="an extra server setting for benchmarks 2 and 3 (repeatable), e.g. "
                        "token_sweep_seconds=0")
    p.add_argument("--skip-downchannels", action="store_true", help="skip benchmarks 2 and 3")
    p.add_argument(
        "--server-log-level",
        choices=["debug", "info", "warning", "error"],
        help="OPENCIC_LOG_LEVEL of the servers (default: the server's own default)",
    )
    p.add_argument("--results-dir", type=Path, default=BENCH / "results")
    p.add_argument("--keep-workdir", action="store_true", help="keep data dirs and server logs")
    args = p.parse_args(argv)
    args.streams = [int(x) for x in str(args.streams).split(",") if x.strip()]
    if not (1 <= args.reps <= 20 and 0 < args.duration <= 300 and 0 <= args.warm_up <= 60):
        p.error("--reps 1..20, --duration 0..300 s, --warm-up 0..60 s")
    if not (
        1 <= args.downchannels <= 60_000
        and 1 <= args.pushes <= 50
        and 1 <= args.dc_reps <= 10
        and 0 < args.push_timeout <= 120
    ):
        p.error("--downchannels 1..60000, --dc-reps 1..10, --pushes 1..50, --push-timeout 0..120 s")
    if not args.streams or any(not 1 <= s <= 256 for s in args.streams):
        p.error("--streams: 1..256 each (the server's max_concurrent_streams)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    h2load = textbench.find_h2load()
    if not args.skip_text and h2load is None:
        print(
            "bench: h2load is not installed. Install it with:\n"
            "    sudo apt-get install nghttp2-client\n"
            "(or skip the text benchmark with --skip-text)",
            file=sys.stderr,
        )
        return 2
    soft, hard = raise_nofile()  # the servers started below inherit it
    if not args.skip_downchannels and soft < args.downchannels + 256:
        print(
            f"bench: the open-files limit is {soft} (hard {hard}); {args.downchannels} "
            f"downchannels need about {args.downchannels + 256}. Raise the hard limit "
            "(e.g. `prlimit --nofile=65536:65536 --pid $$` as root) or use fewer --downchannels.",
            file=sys.stderr,
        )
        return 2
    started = time.strftime("%Y%m%d-%H%M%S")
    results: dict[str, Any] = {
        "started": started,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": tool_versions(h2load),
        "nofile_limit": soft,
        "targets": {
            "full_over_bare_req_per_s": TARGET_RATIO,
            "full_p99_ms_at_100_streams": TARGET_P99_MS,
            "rss_per_downchannel_kib": TARGET_RSS_KIB,
            "fanout_ms_10k": TARGET_FANOUT_MS,
        },
    }
    workdir = Path(tempfile.mkdtemp(prefix="opencic-bench-"))
    procs = Procs()
    status = 0
    try:
        asyncio.run(amain(args, procs, results, workdir, h2load))
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("\nbench: interrupted; stopping everything it started")
        results["interrupted"] = True
        status = 130
    except Exception as exc:  # noqa: BLE001 - reported, partial results kept
        say(f"\nbench: failed: {exc}")
        results["error"] = str(exc)
        status = 1
    finally:
        procs.stop_all()
        if args.keep_workdir:
            say(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if any(not r["all_200"] for r in (results.get("text") or {}).get("runs", [])):
        status = status or 1  # a benchmark that measured errors is worthless
    print_summary(results)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"bench-{started}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    say(f"\nresults: {out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
