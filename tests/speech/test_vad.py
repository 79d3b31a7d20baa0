"""End-of-speech detection with the real Silero model on speech from our own TTS.

Times are *audio* times (sample counts), so the assertions hold however busy the
machine is. The device sends 200 ms parts; the detector reports an event while handling
the part in which it happens, so "reported by" = the end of that part.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opencic.speech.audio import CHUNK_BYTES, add_noise, iter_chunks, silence
from opencic.speech.vad import (
    SILERO_VAD_SHA256,
    EndOfSpeechDetector,
    ModelIntegrityError,
    NoSpeech,
    SileroVad,
    SpeechEnded,
    SpeechEndpointer,
    SpeechStarted,
    VadEvent,
    default_silero_path,
)

MakeUtterance = Callable[..., Any]  # the conftest fixture: (speech, text, ...) -> Utterance

# From the acoustic end of the speech (Piper's quiet tail trimmed): the 600 ms silence
# rule, plus the 50-150 ms Silero stays above threshold on the decaying last phoneme
# (measured 630-830 ms from clean to 5 dB SNR), plus one 32 ms window of rounding.
# Measured from the end of the untrimmed TTS buffer the same events come 150-250 ms sooner.
MAX_ENDPOINT_DELAY_MS = 850.0
CHUNK_MS = 200.0


def run(
    detector: EndOfSpeechDetector, pcm: bytes, chunk: int = CHUNK_BYTES
) -> list[tuple[VadEvent, float]]:
    """Feed ``pcm`` in parts; each event with the audio time at which it was reported."""
    reported: list[tuple[VadEvent, float]] = []
    fed = 0
    for part in iter_chunks(pcm, chunk):
        fed += len(part)
        reported += [(event, fed / 32.0) for event in detector.feed(part)]
    return reported


def test_bundled_model_is_faster_whispers_pinned_file(silero_vad: SileroVad) -> None:
    assert silero_vad.model_path == default_silero_path()
    assert silero_vad.model_path.parts[-3:] == ("faster_whisper", "assets", "silero_vad_v6.onnx")
    digest = hashlib.sha256(silero_vad.model_path.read_bytes()).hexdigest()
    assert digest == SILERO_VAD_SHA256
    assert isinstance(EndOfSpeechDetector(silero_vad), SpeechEndpointer)


@pytest.mark.parametrize("snr_db", [None, 10.0, 5.0], ids=["clean", "10dB", "5dB"])
def test_end_of_speech_is_reported_soon_after_the_speech_ends(
    silero_vad: SileroVad,
    spoken_commands: dict[str, bytes],
    make_utterance: MakeUtterance,
    snr_db: float | None,
) -> None:
    for index, (text, speech) in enumerate(spoken_commands.items()):
        utterance = make_utterance(speech, text, snr_db=snr_db, seed=index)
        detector = EndOfSpeechDetector(silero_vad)
        events = run(detector, utterance.pcm)
        kinds = [type(event) for event, _ in events]
        assert kinds == [SpeechStarted, SpeechEnded], (text, events)
        (started, _), (ended, reported_at) = events
        assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
        # Starts near the real start.
        assert utterance.speech_start_ms - 64 <= started.at_ms <= utterance.speech_start_ms + 300
        # Never before the speech is over, and within the target after it.
        assert utterance.speech_end_ms < ended.at_ms, (text, ended, utterance.speech_end_ms)
        assert ended.at_ms <= utterance.speech_end_ms + MAX_ENDPOINT_DELAY_MS, (text, ended)
        # ...and the device hears about it in the 200 ms part where it happened.
        assert reported_at - CHUNK_MS < ended.at_ms <= reported_at
        assert ended.at_ms - ended.speech_end_ms >= detector.silence_ms - 32
        assert detector.done


def test_short_pauses_inside_speech_do_not_end_it(
    silero_vad: SileroVad, spoken_commands: dict[str, bytes], make_utterance: MakeUtterance
) -> None:
    # "set an alarm for seven thirty" <300 ms> "cancel my alarm" <400 ms> "tell me a joke":
    # pauses people make between phrases, shorter than the 600 ms rule.
    parts = ["set an alarm for seven thirty", "cancel my alarm", "tell me a joke"]
    speech = (
        spoken_commands[parts[0]]
        + silence(300)
        + spoken_commands[parts[1]]
        + silence(400)
        + spoken_commands[parts[2]]
    )
    utterance = make_utterance(speech, " ".join(parts))
    events = run(EndOfSpeechDetector(silero_vad), utterance.pcm)
    assert [type(e) for e, _ in events] == [SpeechStarted, SpeechEnded]
    ended = events[1][0]
    assert utterance.speech_end_ms < ended.at_ms <= utterance.speech_end_ms + MAX_ENDPOINT_DELAY_MS


def test_a_longer_silence_rule_waits_longer(
    silero_vad: SileroVad, spoken_commands: dict[str, bytes], make_utterance: MakeUtterance
) -> None:
    utterance = make_utterance(spoken_commands["what time is it"], "what time is it")
    default = run(EndOfSpeechDetector(silero_vad), utterance.pcm)[-1][0]
    patient = run(EndOfSpeechDetector(silero_vad, silence_ms=1200), utterance.pcm)[-1][0]
    assert isinstance(default, SpeechEnded) and isinstance(patient, SpeechEnded)
    assert patient.at_ms - default.at_ms == pytest.approx(600, abs=64)


def test_part_size_does_not_change_the_result(
    silero_vad: SileroVad, spoken_commands: dict[str, bytes], make_utterance: MakeUtterance
) -> None:
    utterance = make_utterance(spoken_commands["play some music"], "play some music", snr_db=10)
    # 200 ms parts, odd-sized parts that split samples, and one part per byte pair.
    baseline = [e for e, _ in run(EndOfSpeechDetector(silero_vad), utterance.pcm)]
    for chunk in (1001, 511 * 2, 32_000):
        assert [e for e, _ in run(EndOfSpeechDetector(silero_vad), utterance.pcm, chunk)] == (
            baseline
        )


def test_silence_only_reports_no_speech_after_the_timeout(silero_vad: SileroVad) -> None:
    detector = EndOfSpeechDetector(silero_vad, no_speech_timeout_ms=3000)
    events = run(detector, silence(6000))
    assert len(events) == 1
    event, reported_at = events[0]
    assert isinstance(event, NoSpeech)
    assert event.at_ms == pytest.approx(3000, abs=32)
    assert reported_at == pytest.approx(3000, abs=CHUNK_MS)
    assert detector.done and detector.feed(silence(200)) == []


def test_room_noise_alone_is_not_speech(silero_vad: SileroVad) -> None:
    # Steady hiss at about -40 dBFS (a quiet room through a cheap microphone).
    hum = add_noise(silence(6000), 0.0, seed=3, reference=b"\x48\x01" * 100)
    events = run(EndOfSpeechDetector(silero_vad, no_speech_timeout_ms=5000), hum)
    assert [type(e) for e, _ in events] == [NoSpeech]


def test_stream_ending_early_closes_the_utterance(
    silero_vad: SileroVad, spoken_commands: dict[str, bytes]
) -> None:
    # A client that stops sending right after the words (no trailing silence).
    detector = EndOfSpeechDetector(silero_vad)
    events = run(detector, silence(500) + spoken_commands["turn off the lights"])
    assert [type(e) for e, _ in events] == [SpeechStarted]
    assert detector.in_speech
    (final,) = detector.finish()
    assert isinstance(final, SpeechEnded)
    assert final.at_ms == pytest.approx(detector.audio_ms)
    assert detector.finish() == []


def test_stream_ending_in_silence_before_the_timeout_is_no_speech(silero_vad: SileroVad) -> None:
    detector = EndOfSpeechDetector(silero_vad)
    assert run(detector, silence(1000)) == []
    assert detector.finish() == [NoSpeech(1000.0)]


def test_detector_takes_only_capture_rate() -> None:
    with pytest.raises(ValueError, match="16000 Hz"):
        EndOfSpeechDetector(SileroVad(), sample_rate=22050)


def test_sha256_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    tampered = tmp_path / "silero_vad_v6.onnx"
    shutil.copyfile(default_silero_path(), tampered)
    with tampered.open("ab") as f:
        f.write(b"\x00")
    vad = SileroVad(tampered, sha256=SILERO_VAD_SHA256)
    with pytest.raises(ModelIntegrityError, match=r"SHA-256 mismatch .*silero_vad_v6\.onnx"):
        vad.load()


def test_model_path_override(tmp_path: Path) -> None:
    own = tmp_path / "my-vad.onnx"
    shutil.copyfile(default_silero_path(), own)
    vad = SileroVad(own)  # a user's own model: no pinned hash unless one is given
    assert vad.model_path == own
    assert run(EndOfSpeechDetector(vad, no_speech_timeout_ms=1000), silence(1200))[0][0] == (
        NoSpeech(1024.0)
    )
    with pytest.raises(ModelIntegrityError, match="not found"):
        SileroVad(tmp_path / "missing.onnx").load()
