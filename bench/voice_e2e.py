"""End-to-end voice benchmark: spoken commands streamed in real time to a real server.

Usage, from the repository root with OpenCIC installed (pip install -e .):

    python bench/voice_e2e.py                     # 36 commands clean + 10 dB SNR, ramp 1-8 (~6 min)
    python bench/voice_e2e.py --commands 30 --levels 1,2,4 --level-seconds 20
    python bench/voice_e2e.py --partials          # the same with partial results on
    python bench/voice_e2e.py --help

Loopback only. Starts one ``opencic serve --h2c`` (own process group, stopped TERM then
KILL on every exit path), creates device tokens in its store, and acts as devices over raw
HTTP/2 (tests/support/rawh2.py): one connection per device holding its downchannel, the
``SpeechRecognizer.Recognize`` events on the same connection.

Every command is spoken by the project's Piper voice (tests/support/voice.py: noise off,
resampled to 16 kHz, trimmed), put between 300 ms of lead-in and 1.5 s of trailing
silence, optionally mixed with seeded white noise at 10 dB SNR, and sent in 200 ms parts
**in real time**: the part holding audio [t, t + 200 ms) leaves when its last sample
would have been captured, i.e. at ``start + t + 200 ms``. So the real end of speech, in
wall time, is ``start + lead + speech``, known from the sample counts. The device stops
sending at StopCapture (B-SR-02) and closes its upload; the server answers after that.

Client-side figures (p50/p95): end of speech -> StopCapture read on the downchannel,
and -> first byte of the answer (response HEADERS; the first DATA is recorded too).
Intent accuracy: the voice reply's directive names and RenderText text (digits masked:
the time moves) equal those of a TextRecognizer.Recognize of the same sentence sent to
the same server. WER: the server's recognised text from its "voice request" log line.

Then a ramp: 1, 2, 4, 8 devices, each streaming clean commands back to back in real time
for ``--level-seconds``; a level is sustained when there were no errors and the p95 of end
of speech -> first answer byte stays <= 2x the single-stream (clean) p95.

``--partials`` runs the server with ``partial_results`` on: each request also reports how
many ShowRecognizedText the device read before StopCapture, and the server's partial
decodes, their wall time and how long the final decode waited behind one; compare its
StopCapture / first-byte percentiles and server CPU with a run without.

Writes bench/results/voice-e2e-<date>-<time>.json; a summary goes to stdout with
PASS/MISS against the issue's targets. Missing a target does not fail the script.
Exit status: 0 done, 1 the benchmark failed, 2 a prerequisite is missing, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "tests")]

from procs import Procs, clean_env, cpu_seconds, free_port, worker_pid
from support.cic import (
    CONTENT_TYPE,
    auth_headers,
    close,
    event_body,
    event_json,
    open_downchannel,
    part,
    read_parts,
)
from support.rawh2 import RawH2
from support.voice import spoken
from voice_engines import COMMANDS, git_commit
from voice_report import (
    EARLY_ENDPOINT_MS,
    Sample,
    attach_log,
    print_summary,
    summarise,
)

from opencic.speech.audio import (
    CAPTURE_FORMAT,
    CHUNK_BYTES,
    CHUNK_MS,
    add_noise,
    bytes_to_ms,
    iter_chunks,
    silence,
)
from opencic.state.store import create_store

RESULTS = BENCH / "results"
LEAD_MS = 300.0
TRAIL_MS = 1500.0
REQUEST_TIMEOUT = 30.0  # seconds: StopCapture/answer waits, per request


def say(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------------- one request


def _directives(content_type: str, body: bytes, ended: bool) -> list[dict[str, Any]]:
    parts, _ = read_parts(content_type, body, ended)
    return [p.directive for p in parts if "json" in p.headers.get("content-type", "")]


def _names(directives: list[dict[str, Any]]) -> list[str]:
    return [f"{d['header']['namespace']}.{d['header']['name']}" for d in directives]


def _render_text(directives: list[dict[str, Any]]) -> str | None:
    for d in directives:
        if d["header"]["name"] == "RenderText":
            # Digits masked (the time moves); a quoted echo of what was heard masked too
            # (the fallback shows the recognised text: that is WER, not intent).
            text = re.sub(r"\d", "#", str(d["payload"].get("text", "")))
            return re.sub(r'"[^"]*"', '"…"', text)
    return None


class Device:
    """One device: one connection, its downchannel, requests one at a time."""

    def __init__(self, index: int, token: str) -> None:
        self.index = index
        self.token = token
        self.client: RawH2 | None = None
        self.dc_sid = 0

    async def open(self, port: int) -> None:
        self.client = await RawH2.connect("127.0.0.1", port)
        self.dc_sid = await open_downchannel(self.client, self.token)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()

    def _stop_capture_seen(self, dialog: str, sample: Sample | None = None) -> bool:
        assert self.client is not None
        st = self.client.streams[self.dc_sid]
        partials = 0
        for d in _directives(st.headers["content-type"], bytes(st.body), False):
            h = d["header"]
            if h.get("dialogRequestId") != dialog:
                continue
            if h["name"] == "ShowRecognizedText":
                partials += 1
            elif h["name"] == "StopCapture":
                if sample is not None:
                    sample.partials_seen = partials
                return True
        return False

    async def text(self, sentence: str) -> tuple[list[str], str | None]:
        assert self.client is not None
        doc = event_json("TextRecognizer", "Recognize", {"text": sentence}, str(uuid.uuid4()))
        resp = await self.client.request(
            "POST", "/v1/events", auth_headers(self.token, CONTENT_TYPE), event_body(doc),
            timeout=REQUEST_TIMEOUT,
        )
        if resp.status != 200:
            raise RuntimeError(f"text request {sentence!r}: HTTP {resp.status}")
        ds = _directives(resp.headers["content-type"], resp.body, True)
        return _names(ds), _render_text(ds)

    async def voice(self, sample: Sample, pcm: bytes, speech_end_ms: float) -> Sample:
        """Stream ``pcm`` in real time; stop at StopCapture; read the answer."""
        client = self.client
        assert client is not None
        dialog = sample.dialog = str(uuid.uuid4())
        sample.speech_end_audio_ms = speech_end_ms
        meta = {"lang": "en", "profile": "CLOSE_TALK", "format": CAPTURE_FORMAT}
        doc = event_json("SpeechRecognizer", "Recognize", meta, dialog)
        sid = await client.start("POST", "/v1/events", auth_headers(self.token, CONTENT_TYPE))
        await client.send(sid, part(json.dumps(doc).encode()))
        stream = client.streams[sid]
        dc = client.streams[self.dc_sid]
        start = time.perf_counter()
        eos = start + speech_end_ms / 1000.0
        marks: dict[str, float] = {}

        async def watch_downchannel() -> None:
            while not self._stop_capture_seen(dialog, sample):
                if client.closed.is_set() or dc.ended:
                    raise ConnectionError("downchannel closed")
                dc.changed.clear()
                await dc.changed.wait()
            marks["stop"] = time.perf_counter()

        async def watch_response() -> None:
            while not stream.ended:
                if stream.status is not None and "head" not in marks:
                    marks["head"] = time.perf_counter()
                if stream.body and "data" not in marks:
                    marks["data"] = time.perf_counter()
                if client.closed.is_set():
                    raise ConnectionError("connection closed")
                stream.changed.clear()
                await stream.changed.wait()
            now = time.perf_counter()
            marks.setdefault("head", now)
            if stream.body:
                marks.setdefault("data", now)
            marks["end"] = now

        dc_task = asyncio.create_task(watch_downchannel())
        resp_task = asyncio.create_task(watch_response())
        try:
            for k, chunk in enumerate(iter_chunks(pcm, CHUNK_BYTES)):
                due = start + (k + 1) * CHUNK_MS / 1000.0
                delay = due - time.perf_counter()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(dc_task), delay)
                if dc_task.done() or stream.ended:
                    break  # StopCapture (B-SR-02: stop recording at once) or an early answer
                await client.send(sid, part(chunk, "application/octet-stream", "audio"))
                sample.parts_sent += 1
            if not stream.ended:
                await client.send(sid, close(), end=True)
            await asyncio.wait_for(asyncio.shield(resp_task), REQUEST_TIMEOUT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(dc_task), 1.0)
        except (TimeoutError, ConnectionError) as exc:
            sample.error = f"{type(exc).__name__}: {exc}"
        finally:
            for task in (dc_task, resp_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        ms = lambda key: None if key not in marks else round((marks[key] - eos) * 1000.0, 1)
        sample.stop_after_eos_ms = ms("stop")
        sample.first_byte_after_eos_ms = ms("head")
        sample.first_data_after_eos_ms = ms("data")
        sample.complete_after_eos_ms = ms("end")
        sample.status = stream.status or 0
        if sample.error is None and sample.status != 200:
            sample.error = f"HTTP {sample.status}"
        if sample.error is None and "stop" not in marks:
            sample.error = "no StopCapture"
        if sample.status == 200 and stream.ended:
            ds = _directives(stream.headers["content-type"], bytes(stream.body), True)
            sample.directives = _names(ds)
            sample.render_text = _render_text(ds)
        return sample


# ------------------------------------------------------------------------- audio


@dataclass
class Spoken:
    text: str
    condition: str
    pcm: bytes
    speech_end_ms: float


def build_audio(commands: list[str], snr_db: float | None, seed: int) -> list[Spoken]:
    out = []
    for i, text in enumerate(commands):
        speech = spoken(text)
        pcm = silence(LEAD_MS) + speech + silence(TRAIL_MS)
        condition = "clean"
        if snr_db is not None:
            pcm = add_noise(pcm, snr_db, seed=seed + i, reference=speech)
            condition = f"snr{snr_db:g}dB"
        out.append(Spoken(text, condition, pcm, LEAD_MS + bytes_to_ms(len(speech))))
    return out


# ------------------------------------------------------------------------- phases


async def single_stream(
    device: Device, audio: list[Spoken], reference: dict[str, tuple[list[str], str | None]],
    gap: float,
) -> list[Sample]:
    samples = []
    for spk in audio:
        s = await device.voice(Sample(spk.text, spk.condition), spk.pcm, spk.speech_end_ms)
        ref = reference[spk.text]
        if s.status == 200:
            s.intent_ok = (s.directives, s.render_text) == ref
        mark = "ok " if s.error is None and s.intent_ok else "!! "
        say(
            f"  {mark}[{spk.condition:>9}] {spk.text!r:<42} stop +{s.stop_after_eos_ms} ms, "
            f"first byte +{s.first_byte_after_eos_ms} ms{'  ' + s.error if s.error else ''}"
        )
        samples.append(s)
        await asyncio.sleep(gap)
    return samples


async def ramp_level(
    devices: list[Device], audio: list[Spoken], reference: dict[str, tuple[list[str], str | None]],
    seconds: float, worker: int | None,
) -> tuple[list[Sample], dict[str, Any]]:
    level = len(devices)
    deadline = time.perf_counter() + seconds
    samples: list[Sample] = []

    async def run_device(dev: Device) -> None:
        # Staggered starts and command order, so the devices do not speak in lockstep.
        await asyncio.sleep(dev.index * 0.37 % 1.5)
        i = dev.index * 7
        for _ in range(1000):  # bounded; the deadline ends it long before
            if time.perf_counter() >= deadline:
                return
            spk = audio[i % len(audio)]
            i += 1
            s = await dev.voice(Sample(spk.text, spk.condition, dev.index, level), spk.pcm,
                                spk.speech_end_ms)
            if s.status == 200:
                s.intent_ok = (s.directives, s.render_text) == reference[spk.text]
            samples.append(s)
            await asyncio.sleep(0.2)

    cpu0, wall0 = (cpu_seconds(worker) if worker else 0.0), time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(run_device(d) for d in devices)),
                           seconds + REQUEST_TIMEOUT + 60)
    wall = time.perf_counter() - wall0
    cpu = (cpu_seconds(worker) - cpu0) if worker else 0.0
    return samples, {"wall_s": round(wall, 1), "server_cpu_s": round(cpu, 1),
                     "server_cpu_per_wall": round(cpu / wall, 2) if wall else None}


# ------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, procs: Procs, workdir: Path, out: dict[str, Any]) -> int:
    commands = list(COMMANDS[: max(1, args.commands)])
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    n_devices = max([1, *levels])

    t = time.perf_counter()
    clean = build_audio(commands, None, args.seed)
    noisy = build_audio(commands, args.snr, args.seed)
    speech_s = sum(len(s.pcm) for s in clean) / 32000
    say(f"synthesised {len(commands)} commands ({speech_s:.0f} s of audio each condition) "
        f"in {time.perf_counter() - t:.1f} s")

    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    names = [f"bench-voice-{i}" for i in range(n_devices)]
    async with create_store("", data_dir) as store:
        await store.devices.ensure(names)
        tokens = [(await store.tokens.issue(n, ttl=24 * 3600)).access_token for n in names]

    log_path = workdir / "server.log"
    port = free_port()
    t = time.perf_counter()
    server = await procs.start_server(
        "opencic",
        [sys.executable, "-m", "opencic.cli.main", "serve", "--h2c", "--port", str(port),
         "--data-dir", str(data_dir)],
        env=clean_env({**({"OPENCIC_PARTIAL_RESULTS": "true"} if args.partials else {}),
                       **({"OPENCIC_SPECULATIVE_DECODE": "false"} if args.no_speculation else {}),
                       "OPENCIC_EARLY_ENDPOINT_MS": f"{args.early_endpoint_ms:g}"}),
        log_path=log_path, timeout=120,
    )
    say(f"server up on 127.0.0.1:{port} in {time.perf_counter() - t:.1f} s")
    try:
        worker: int | None = worker_pid(server.pid)
    except RuntimeError:
        worker = None

    devices = [Device(i, tok) for i, tok in enumerate(tokens)]
    try:
        for d in devices:
            await d.open(port)
        dev0 = devices[0]
        # Reference replies: the same sentences as text, on the same server.
        reference = {c: await dev0.text(c) for c in commands}
        out["not_understood_commands"] = [
            c for c, (_, text) in reference.items() if text and text.startswith("Sorry")
        ]
        # Warm-up: models loaded and the answer caches filled (not measured).
        say("warm-up (not measured) ...")
        for spk in clean[:3]:
            await dev0.voice(Sample(spk.text, "warmup"), spk.pcm, spk.speech_end_ms)

        say(f"single stream: {len(clean)} clean + {len(noisy)} at {args.snr:g} dB SNR, real time")
        single = await single_stream(dev0, clean + noisy, reference, args.gap)
        await asyncio.sleep(0.5)  # the log lines are written as the answer starts
        attach_log(single, log_path, args.early_endpoint_ms)
        out["early_endpoint_ms"] = args.early_endpoint_ms
        out["single"] = {
            "clean": summarise([s for s in single if s.condition == "clean"]),
            "noisy": summarise([s for s in single if s.condition != "clean"]),
            "all": summarise(single),
        }
        out["samples"] = [asdict(s) for s in single]
        baseline = out["single"]["clean"]["first_byte_after_eos_p95_ms"]

        out["ramp"] = []
        for level in levels:
            say(f"ramp: {level} concurrent device(s) for {args.level_seconds:g} s ...")
            samples, cpu = await ramp_level(devices[:level], clean, reference,
                                            args.level_seconds, worker)
            await asyncio.sleep(0.5)
            attach_log(samples, log_path, args.early_endpoint_ms)
            summary = summarise(samples)
            p95 = summary["first_byte_after_eos_p95_ms"]
            sustained = (summary["errors"] == 0 and summary["requests"] > 0
                         and p95 is not None and baseline is not None and p95 <= 2 * baseline)
            row = {"level": level, **summary, **cpu, "sustained": sustained}
            out["ramp"].append(row)
            out.setdefault("ramp_samples", []).extend(asdict(s) for s in samples)
            say(f"  {summary['requests']} requests, {summary['errors']} errors, "
                f"first byte p95 {p95} ms, server CPU {cpu['server_cpu_per_wall']} core(s) "
                f"-> {'sustained' if sustained else 'NOT sustained'}")
    finally:
        for d in devices:
            await d.close()
        await procs.astop(server.process)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=len(COMMANDS),
                        help=f"how many commands (default all {len(COMMANDS)})")
    parser.add_argument("--snr", type=float, default=10.0, help="noisy condition, dB SNR")
    parser.add_argument("--seed", type=int, default=0, help="noise seed base")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between single requests")
    parser.add_argument("--levels", default="1,2,4,8", help="concurrency ramp, comma-separated")
    parser.add_argument("--level-seconds", type=float, default=25.0,
                        help="seconds each ramp level runs (requests started before the end)")
    parser.add_argument("--partials", action="store_true",
                        help="server with partial_results on (ShowRecognizedText)")
    parser.add_argument("--no-speculation", action="store_true",
                        help="server with speculative_decode off (decode only at the end of speech)")
    parser.add_argument("--early-endpoint-ms", type=float, default=EARLY_ENDPOINT_MS,
                        help="server's early_endpoint_ms (0: every request waits for the "
                             "600 ms silence rule)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep data dir + server log")
    parser.add_argument("--no-json", action="store_true", help="do not write the results file")
    args = parser.parse_args(argv)
    if args.commands < 30:
        say("note: the issue asks for at least 30 commands")

    procs = Procs()

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    workdir = Path(tempfile.mkdtemp(prefix="opencic-voice-e2e-"))
    out: dict[str, Any] = {"options": vars(args), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    status = 0
    try:
        status = asyncio.run(run(args, procs, workdir, out))
    except KeyboardInterrupt:
        say("interrupted")
        status = 130
    except Exception as exc:  # noqa: BLE001 - report, clean up, exit 1
        say(f"bench failed: {type(exc).__name__}: {exc}")
        log = workdir / "server.log"
        if log.exists():
            say("server log tail:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:]))
        status = 1
    finally:
        procs.stop_all()
        if args.keep_workdir:
            say(f"workdir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_summary(out)
    out["versions"] = {"python": platform.python_version(), "commit": git_commit()}
    out["status"] = status
    if not args.no_json and ("single" in out):
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / time.strftime("voice-e2e-%Y%m%d-%H%M%S.json")
        path.write_text(json.dumps(out, indent=2))
        say(f"\nwrote {path.relative_to(REPO)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
