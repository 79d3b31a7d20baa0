"""What partial results (ShowRecognizedText) cost: the same voice turns with them off
and on, interleaved, in one process, paced in real time as a device sends them.

Usage, from the repository root with OpenCIC installed (pip install -e .):

    python bench/voice_partials.py                  # 12 requests x 2 modes (~2 min)
    python bench/voice_partials.py --rounds 2 --no-json
    python bench/voice_partials.py --silence-ms 2000   # a loaded machine: see below

No server and no sockets: a VoiceTurn (the real Silero VAD, Whisper tiny.en and Piper
voice) is fed 200 ms parts at the moment each part's last sample would have been
captured, so partial decodes compete for the cores as they would in the server. Each
utterance runs once with partials off and once on (alternating which goes first), so a
change in machine load hits both modes alike. Per mode (p50/p95):

- StopCapture: wall ms from the moment the part revealing the end of speech was due to
  the moment ``feed`` said so (VAD time + any event-loop delay caused by partials);
- final: ms from the end of speech being detected to the final transcript, and how much
  of it the final decode waited behind another decode (``final_wait_ms``);
- CPU: process CPU seconds per request (all threads: VAD, decodes, TTS of the answer);
- partial decodes and ShowRecognizedText per request, and the wall time of one partial.

Partials only start when a decode fits before the end-of-speech rule could fire
(PartialScheduler rule 1), with the decode time learned from recent decodes: on a
machine so loaded that a decode takes longer than the 600 ms silence rule there are
none, and the "on" figures equal the "off" ones. ``--silence-ms`` sets the rule for both
modes, to measure what partials cost where they do run.

Writes bench/results/voice-partials-<date>-<time>.json; prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "tests")]

from support.voice import spoken
from voice_engines import git_commit, percentile

from opencic.assistant import Assistant, DeviceContext
from opencic.assistant.voice import SpeechInput, VoiceTurn
from opencic.protocol.messages import Directive, Event
from opencic.speech import PiperTextToSpeech, SpeechSynthesizer
from opencic.speech.audio import CAPTURE_FORMAT, CHUNK_BYTES, CHUNK_MS, iter_chunks, silence

RESULTS = BENCH / "results"
REQUESTS = (
    "what time is it",
    "set the volume to five",
    "what's the weather like tomorrow in the kitchen",
    "set an alarm for seven thirty tomorrow morning and turn on the lights",
    ("what's the weather like tomorrow in the kitchen and in the living room "
    "and what time is it in tokyo"),
    "turn the volume down a little and then tell me what the date is today please",
)
DEVICE = DeviceContext("bench-device", "OpenCIC-Bench/0.1.0 (Linux; x86_64)")


@dataclass
class Sample:
    text: str
    mode: str
    speech_ms: float
    stop_ms: float | None = None  # part due -> feed() said "stop"
    recognized_after_ms: float | None = None
    final_wait_ms: float | None = None
    decode_ms: float | None = None
    cpu_s: float = 0.0
    partial_decodes: int = 0
    partials_shown: int = 0
    partial_wall_ms: float = 0.0
    keep_recording: int = 0


async def one(engines: SpeechInput, assistant: Assistant, text: str, mode: str) -> Sample:
    speech = spoken(text)
    pcm = silence(300) + speech + silence(engines.silence_ms + 900)
    sample = Sample(text, mode, len(speech) / 32)
    event = Event.create("SpeechRecognizer", "Recognize",
                         {"lang": "en", "format": CAPTURE_FORMAT}, dialog_request_id=text)
    turn = VoiceTurn(assistant, engines, event, DEVICE, "en")
    sent: list[Directive] = []
    turn.interim = sent.append
    cpu0 = time.process_time()
    start = time.perf_counter()
    for k, part in enumerate(iter_chunks(pcm, CHUNK_BYTES)):
        due = start + (k + 1) * CHUNK_MS / 1000.0
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if turn.feed(part, k + 1):
            sample.stop_ms = round((time.perf_counter() - due) * 1000.0, 2)
            turn.stop_capture()
            break
    turn.end_of_audio()
    await turn.reply()
    sample.cpu_s = round(time.process_time() - cpu0, 3)
    summary = turn.summary()
    sample.recognized_after_ms = summary["recognized_after_ms"]
    sample.final_wait_ms = summary["final_wait_ms"]
    sample.decode_ms = summary["decode_ms"]
    sample.partial_decodes = summary.get("partial_decodes", 0)
    sample.partials_shown = summary.get("partials_shown", 0)
    sample.partial_wall_ms = summary.get("partial_wall_ms", 0.0)
    sample.keep_recording = summary["keep_recording"]
    await asyncio.sleep(0.3)  # let a late partial finish before the next request
    return sample


def _p(values: list[float], q: float) -> float | None:
    return round(percentile(values, q), 1) if values else None


def summarise(samples: list[Sample]) -> dict[str, Any]:
    stop = [s.stop_ms for s in samples if s.stop_ms is not None]
    final = [s.recognized_after_ms for s in samples if s.recognized_after_ms is not None]
    wait = [s.final_wait_ms for s in samples if s.final_wait_ms is not None]
    decodes = sum(s.partial_decodes for s in samples)
    return {
        "requests": len(samples),
        "stop_p50_ms": _p(stop, 0.5), "stop_p95_ms": _p(stop, 0.95),
        "final_p50_ms": _p(final, 0.5), "final_p95_ms": _p(final, 0.95),
        "final_wait_p50_ms": _p(wait, 0.5), "final_wait_p95_ms": _p(wait, 0.95),
        "final_wait_max_ms": max(wait) if wait else None,
        "cpu_s_per_request": round(sum(s.cpu_s for s in samples) / len(samples), 3),
        "partial_decodes_per_request": round(decodes / len(samples), 2),
        "partials_shown_per_request": round(
            sum(s.partials_shown for s in samples) / len(samples), 2),
        "wall_ms_per_partial": (
            round(sum(s.partial_wall_ms for s in samples) / decodes, 1) if decodes else None
        ),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = SpeechInput.default()
    await base.load()
    rule = {"silence_ms": args.silence_ms}
    off = SpeechInput(base.recognizer, base.vad, partial_results=False, **rule)
    on = SpeechInput(base.recognizer, base.vad, partial_results=True, **rule)
    synthesizer = SpeechSynthesizer(PiperTextToSpeech())
    assistant = Assistant(synthesizer, speech_input=base)
    for text in REQUESTS[:2]:  # warm-up: models, answer cache (not measured)
        await one(off, assistant, text, "warmup")
    samples: list[Sample] = []
    for r in range(args.rounds):
        for i, text in enumerate(REQUESTS):
            order = [("off", off), ("on", on)]
            if (i + r) % 2:
                order.reverse()
            for mode, engines in order:
                s = await one(engines, assistant, text, mode)
                print(f"  {mode:>3} {text[:50]!r:<53} speech {s.speech_ms / 1000:.1f} s  stop "
                      f"+{s.stop_ms} ms  final +{s.recognized_after_ms} ms (waited "
                      f"{s.final_wait_ms})  cpu {s.cpu_s:.2f} s  partials "
                      f"{s.partials_shown}/{s.partial_decodes}", flush=True)
                samples.append(s)
    base.close()
    synthesizer.close()
    return {
        "off": summarise([s for s in samples if s.mode == "off"]),
        "on": summarise([s for s in samples if s.mode == "on"]),
        "samples": [asdict(s) for s in samples],
        "decode_estimate_ms": round(on.decode_ms, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the requests")
    parser.add_argument("--silence-ms", type=float, default=600.0,
                        help="end-of-speech silence rule for both modes (default 600)")
    parser.add_argument("--no-json", action="store_true", help="do not write the results file")
    args = parser.parse_args(argv)
    out = asyncio.run(run(args))
    out["options"] = vars(args)
    print(f"\n{'mode':<5}{'stop p50':>9}{'p95':>7}{'final p50':>10}{'p95':>7}{'wait p95':>9}"
          f"{'max':>7}{'CPU s/req':>10}{'partials':>9}{'decodes':>8}{'ms/partial':>11}")
    for mode in ("off", "on"):
        m = out[mode]
        print(f"{mode:<5}{m['stop_p50_ms']!s:>9}{m['stop_p95_ms']!s:>7}{m['final_p50_ms']!s:>10}"
              f"{m['final_p95_ms']!s:>7}{m['final_wait_p95_ms']!s:>9}{m['final_wait_max_ms']!s:>7}"
              f"{m['cpu_s_per_request']:>10}{m['partials_shown_per_request']:>9}"
              f"{m['partial_decodes_per_request']:>8}{m['wall_ms_per_partial']!s:>11}")
    print("stop = ms from the part revealing the end of speech being due to StopCapture being "
          "due; final = ms from then to the final transcript; wait = its wait behind other "
          f"decodes. Learned decode estimate at the end: {out['decode_estimate_ms']} ms.")
    out["versions"] = {"python": platform.python_version(), "commit": git_commit()}
    if not args.no_json:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / time.strftime("voice-partials-%Y%m%d-%H%M%S.json")
        path.write_text(json.dumps(out, indent=2))
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
