"""Figures and the printed summary of ``voice_e2e.py``: one request's measurements
(:class:`Sample`), the server's own timings from its log, percentiles and WER, and
PASS/MISS against issue 4's targets. No I/O beyond reading the server log."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voice_engines import percentile

from opencic.speech.metrics import normalize_text, word_error_rate

SILENCE_RULE_MS = 600.0  # the server's end-of-speech rule (silence after speech)
# The server's early_endpoint_ms default: a complete request ends after this much silence.
EARLY_ENDPOINT_MS = 300.0
TARGET_STOP_AFTER_RULE_MS = 250.0
TARGET_FIRST_BYTE_MS = 500.0
TARGET_WER_PERCENT = 8.0


@dataclass
class Sample:
    text: str
    condition: str
    device: int = 0
    level: int = 0  # concurrency level (0 = the single-stream pass)
    dialog: str = ""
    speech_end_audio_ms: float = 0.0
    stop_after_eos_ms: float | None = None
    first_byte_after_eos_ms: float | None = None  # response HEADERS
    first_data_after_eos_ms: float | None = None
    complete_after_eos_ms: float | None = None
    parts_sent: int = 0
    status: int = 0
    directives: list[str] = field(default_factory=list)
    render_text: str | None = None
    intent_ok: bool | None = None
    recognized: str | None = None  # from the server log
    partials_seen: int = 0  # ShowRecognizedText read on the downchannel before StopCapture
    server: dict[str, Any] = field(default_factory=dict)  # the server's own timings
    rule_ms: float = SILENCE_RULE_MS  # the silence that ended it (early_endpoint_ms or the rule)
    error: str | None = None


# ------------------------------------------------------------------------- server log


def voice_log(log_path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if '"voice request"' not in line:
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if doc.get("dialogRequestId"):
            out[doc["dialogRequestId"]] = doc
    return out


SERVER_FIELDS = (
    "outcome", "speech_end_ms", "endpoint_ms", "stop_capture_after_ms",
    "recognized_after_ms", "first_answer_byte_after_ms", "decode_ms", "final_wait_ms",
    "partials_shown", "partial_decodes", "partials_declined", "partial_wall_ms",
    "early_end",
)


def attach_log(samples: list[Sample], log_path: Path,
               early_ms: float = EARLY_ENDPOINT_MS) -> None:
    lines = voice_log(log_path)
    for s in samples:
        line = lines.get(s.dialog)
        if line is not None:
            s.recognized = line.get("text") or ""
            s.server = {k: line.get(k) for k in SERVER_FIELDS if k in line}
            s.rule_ms = early_ms if s.server.get("early_end") else SILENCE_RULE_MS


# ------------------------------------------------------------------------- figures


def _p(values: list[float], q: float) -> float | None:
    return round(percentile(values, q), 1) if values else None


def summarise(samples: list[Sample]) -> dict[str, Any]:
    ok = [s for s in samples if s.error is None]
    stop = [s.stop_after_eos_ms for s in ok if s.stop_after_eos_ms is not None]
    first = [s.first_byte_after_eos_ms for s in ok if s.first_byte_after_eos_ms is not None]
    # After the rule that ended each request: early_endpoint_ms for a complete one.
    stop_rule = [s.stop_after_eos_ms - s.rule_ms for s in ok if s.stop_after_eos_ms is not None]
    first_rule = [s.first_byte_after_eos_ms - s.rule_ms for s in ok
                  if s.first_byte_after_eos_ms is not None]
    data = [s.first_data_after_eos_ms for s in ok if s.first_data_after_eos_ms is not None]
    with_text = [s for s in samples if s.recognized is not None]
    intents = [s for s in samples if s.intent_ok is not None]
    srv_stop = [s.server["stop_capture_after_ms"] for s in ok
                if s.server.get("stop_capture_after_ms") is not None]
    srv_first = [s.server["first_answer_byte_after_ms"] for s in ok
                 if s.server.get("first_answer_byte_after_ms") is not None]
    final_wait = [s.server["final_wait_ms"] for s in ok
                  if s.server.get("final_wait_ms") is not None]
    decodes = [s.server.get("partial_decodes", 0) for s in ok]
    partial_wall = [s.server.get("partial_wall_ms", 0.0) for s in ok]
    return {
        "requests": len(samples),
        "errors": len(samples) - len(ok),
        "stop_after_eos_p50_ms": _p(stop, 0.5),
        "stop_after_eos_p95_ms": _p(stop, 0.95),
        "early_ends": sum(1 for s in ok if s.server.get("early_end")),
        "stop_after_rule_p50_ms": _p(stop_rule, 0.5),
        "stop_after_rule_p95_ms": _p(stop_rule, 0.95),
        "first_byte_after_eos_p50_ms": _p(first, 0.5),
        "first_byte_after_eos_p95_ms": _p(first, 0.95),
        "first_byte_after_rule_p50_ms": _p(first_rule, 0.5),
        "first_byte_after_rule_p95_ms": _p(first_rule, 0.95),
        "first_data_after_eos_p50_ms": _p(data, 0.5),
        "first_data_after_eos_p95_ms": _p(data, 0.95),
        "server_stop_after_detect_p50_ms": _p(srv_stop, 0.5),
        "server_stop_after_detect_p95_ms": _p(srv_stop, 0.95),
        "server_first_byte_after_detect_p50_ms": _p(srv_first, 0.5),
        "server_first_byte_after_detect_p95_ms": _p(srv_first, 0.95),
        "final_wait_p50_ms": _p(final_wait, 0.5),
        "final_wait_p95_ms": _p(final_wait, 0.95),
        "partials_seen_per_request": (
            round(sum(s.partials_seen for s in ok) / len(ok), 2) if ok else None
        ),
        "partial_decodes_per_request": round(sum(decodes) / len(ok), 2) if ok else None,
        "partial_decode_wall_ms_per_request": (
            round(sum(partial_wall) / len(ok), 1) if ok else None
        ),
        "intent_ok": sum(bool(s.intent_ok) for s in intents),
        "intent_checked": len(intents),
        "wer_percent": (
            round(100.0 * word_error_rate((s.text, s.recognized or "") for s in with_text), 2)
            if with_text else None
        ),
        "sentences_exact": sum(
            normalize_text(s.text) == normalize_text(s.recognized or "") for s in with_text
        ),
        "recognised": len(with_text),
    }


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "MISS (no data)"
    return "PASS" if value <= target else "MISS"




def print_summary(out: dict[str, Any]) -> None:
    single = out.get("single")
    if not single:
        return
    print()
    print(f"{'condition':<10}{'n':>4}{'err':>4}{'intent':>8}{'WER %':>7}{'exact':>7}"
          f"{'stop p50':>10}{'stop p95':>10}{'1st p50':>9}{'1st p95':>9}")
    for name in ("clean", "noisy", "all"):
        s = single[name]
        print(f"{name:<10}{s['requests']:>4}{s['errors']:>4}"
              f"{s['intent_ok']:>4}/{s['intent_checked']:<3}"
              f"{s['wer_percent'] if s['wer_percent'] is not None else '-':>7}"
              f"{s['sentences_exact']:>4}/{s['recognised']:<2}"
              f"{s['stop_after_eos_p50_ms']:>10}{s['stop_after_eos_p95_ms']:>10}"
              f"{s['first_byte_after_eos_p50_ms']:>9}{s['first_byte_after_eos_p95_ms']:>9}")
    print("stop / 1st = client-side ms from the real end of speech to StopCapture read on the "
          "downchannel / to the answer's response headers.")
    a = single["all"]
    c = single["clean"]
    fallback = out.get("not_understood_commands") or []
    print(f"intent = same directives and RenderText as the text request of the same sentence; "
          f"{len(fallback)} of the commands are not understood even as text (the fallback).")
    print("\nTargets (issue 4), p95 over clean + noisy:")
    print(f"  StopCapture <= {TARGET_STOP_AFTER_RULE_MS:.0f} ms after the silence rule "
          f"(EoS + {SILENCE_RULE_MS:.0f} ms, or + {out['early_endpoint_ms']:.0f} ms for the "
          f"{a['early_ends']} of {a['requests']} that ended early as complete requests): "
          f"p50 {a['stop_after_rule_p50_ms']} / "
          f"p95 {a['stop_after_rule_p95_ms']} ms  "
          f"{verdict(a['stop_after_rule_p95_ms'], TARGET_STOP_AFTER_RULE_MS)}")
    print(f"  first answer byte <= {TARGET_FIRST_BYTE_MS:.0f} ms after end of speech: "
          f"p50 {a['first_byte_after_eos_p50_ms']} / p95 {a['first_byte_after_eos_p95_ms']} ms  "
          f"{verdict(a['first_byte_after_eos_p95_ms'], TARGET_FIRST_BYTE_MS)}")
    print(f"    (for reference: first byte after the silence rule p50 "
          f"{a['first_byte_after_rule_p50_ms']} / p95 {a['first_byte_after_rule_p95_ms']} ms; "
          f"server's own log, after the part revealing the end of speech arrived: StopCapture "
          f"p50 {a['server_stop_after_detect_p50_ms']} / p95 {a['server_stop_after_detect_p95_ms']}"
          f" ms, first byte p50 {a['server_first_byte_after_detect_p50_ms']} / "
          f"p95 {a['server_first_byte_after_detect_p95_ms']} ms)")
    print(f"  WER <= {TARGET_WER_PERCENT:g} % on clean commands: {c['wer_percent']} %  "
          f"{verdict(c['wer_percent'], TARGET_WER_PERCENT)}")
    print(f"  final decode waited behind other decodes: p50 {a['final_wait_p50_ms']} / "
          f"p95 {a['final_wait_p95_ms']} ms; per request: {a['partials_seen_per_request']} "
          f"ShowRecognizedText read before StopCapture, {a['partial_decodes_per_request']} "
          f"partial decodes taking {a['partial_decode_wall_ms_per_request']} ms of wall time")
    misses = [s for s in out.get("samples", [])
              if s["error"] or not s["intent_ok"]
              or normalize_text(s["text"]) != normalize_text(s["recognized"] or "")]
    for s in misses:
        print(f"  [{s['condition']}] {s['text']!r} heard {s['recognized']!r} "
              f"intent {'ok' if s['intent_ok'] else 'WRONG'}{' ' + s['error'] if s['error'] else ''}")
    ramp = out.get("ramp") or []
    if ramp:
        print(f"\nConcurrent real-time streams (sustained: no errors and first-byte p95 <= 2 x "
              f"{c['first_byte_after_eos_p95_ms']} ms):")
        print(f"{'devices':>8}{'req':>6}{'err':>5}{'intent':>9}{'1st p50':>9}{'1st p95':>9}"
              f"{'stop p95':>10}{'CPU':>6}  sustained")
        for r in ramp:
            print(f"{r['level']:>8}{r['requests']:>6}{r['errors']:>5}"
                  f"{r['intent_ok']:>5}/{r['intent_checked']:<3}"
                  f"{r['first_byte_after_eos_p50_ms']!s:>9}{r['first_byte_after_eos_p95_ms']!s:>9}"
                  f"{r['stop_after_eos_p95_ms']!s:>10}{r['server_cpu_per_wall']!s:>6}  "
                  f"{'yes' if r['sustained'] else 'NO'}")
        best = 0
        for r in ramp:
            if not r["sustained"]:
                break
            best = r["level"]
        out["sustained_streams"] = best
        print(f"  one server process sustains {best} concurrent real-time voice stream(s) "
              f"(of the levels tried; CPU = server worker cores busy)")
