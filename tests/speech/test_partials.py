"""The partial-result scheduler, sans I/O: plain numbers in, decisions out (B-SR-03)."""

from __future__ import annotations

import pytest

from opencic.speech.partials import PartialScheduler

PART_MS = 200.0  # one audio part (B-AU-02)


def run_parts(
    scheduler: PartialScheduler,
    *,
    speech_start_ms: float,
    until_ms: float,
) -> list[float]:
    """Feed 200 ms parts up to ``until_ms``; each decode returns at once with a text that
    grows with the audio. The audio positions at which decodes were started."""
    starts: list[float] = []
    audio = 0.0
    while audio < until_ms:
        audio += PART_MS
        started = speech_start_ms if audio >= speech_start_ms else None
        if scheduler.poll(audio, speech_start_ms=started):
            starts.append(audio)
            scheduler.result(f"words up to {audio:g}", wall_ms=100.0)
    return starts


def test_nothing_before_speech_then_one_decode_per_interval_of_new_speech() -> None:
    scheduler = PartialScheduler(1000.0, 600.0)
    starts = run_parts(scheduler, speech_start_ms=600.0, until_ms=5000.0)
    # Speech starts at 600 ms: the first decode when 1 s of it is there, then every 1 s.
    assert starts == [1600.0, 2600.0, 3600.0, 4600.0]
    assert scheduler.requested == scheduler.shown == 4


def test_one_decode_in_flight_at_a_time() -> None:
    scheduler = PartialScheduler(1000.0, 600.0)
    assert scheduler.poll(1200.0, speech_start_ms=0.0)
    assert scheduler.in_flight
    # However much audio comes meanwhile, no second decode while the first runs.
    for audio in (1400.0, 2400.0, 3400.0):
        assert not scheduler.poll(audio, speech_start_ms=0.0)
    assert scheduler.result("what's the", wall_ms=250.0) == "what's the"
    assert not scheduler.in_flight
    # The next interval counts from the audio that decode covered (1200 ms).
    assert not scheduler.poll(2000.0, speech_start_ms=0.0)
    assert scheduler.poll(3400.0, speech_start_ms=0.0)


def test_a_declined_decode_covers_nothing_so_the_next_part_asks_again() -> None:
    scheduler = PartialScheduler(1000.0, 600.0)
    assert scheduler.poll(1000.0, speech_start_ms=0.0)
    assert scheduler.result(None) is None  # the engine was busy with a final
    assert scheduler.declined == 1
    assert scheduler.poll(1200.0, speech_start_ms=0.0)
    assert scheduler.result("turn the", wall_ms=200.0) == "turn the"


def test_no_decode_when_the_end_of_speech_could_come_first() -> None:
    """Rule 1: a decode started in a silence run that may end the utterance before the
    decode is done would make the final decode wait behind it."""
    scheduler = PartialScheduler(1000.0, 600.0, decode_ms=300.0)
    assert not scheduler.poll(2000.0, speech_start_ms=0.0, silence_ms=320.0)  # 280 ms left
    assert scheduler.poll(2000.0, speech_start_ms=0.0, silence_ms=288.0)  # 312 ms left
    # Slow decodes (a loaded machine) teach it to keep further away from the end.
    scheduler.result("set an alarm", wall_ms=500.0)
    assert scheduler.decode_ms == pytest.approx(400.0)
    assert not scheduler.poll(3200.0, speech_start_ms=0.0, silence_ms=256.0)
    assert scheduler.poll(3200.0, speech_start_ms=0.0, silence_ms=96.0)


def test_nothing_after_the_end_of_speech_and_a_late_result_is_dropped() -> None:
    """Rule 4: ShowRecognizedText never follows StopCapture."""
    scheduler = PartialScheduler(1000.0, 600.0)
    assert scheduler.poll(1000.0, speech_start_ms=0.0)
    scheduler.stop()
    assert scheduler.result("what time is", wall_ms=300.0) is None
    assert scheduler.dropped == 1 and scheduler.shown == 0
    assert not scheduler.poll(5000.0, speech_start_ms=0.0)


def test_only_new_non_empty_text_is_shown() -> None:
    scheduler = PartialScheduler(200.0, 600.0)
    shown = []
    for audio, text in [(200, ""), (400, " what "), (600, "what"), (800, "what time")]:
        assert scheduler.poll(float(audio), speech_start_ms=0.0)
        shown.append(scheduler.result(text, wall_ms=10.0))
    assert shown == [None, "what", None, "what time"]


def test_a_streaming_engine_is_asked_after_every_part_with_new_audio() -> None:
    """interval 0: partials are a by-product of feeding; still one at a time, and never
    twice for the same audio."""
    scheduler = PartialScheduler(0.0, 600.0, decode_ms=1.0)
    starts = run_parts(scheduler, speech_start_ms=200.0, until_ms=1400.0)
    assert starts == [400.0, 600.0, 800.0, 1000.0, 1200.0, 1400.0]
    assert not scheduler.poll(1400.0, speech_start_ms=200.0)


@pytest.mark.parametrize(("interval", "rule", "decode"), [(-1, 600, 0), (0, 0, 0), (0, 600, -1)])
def test_bad_parameters(interval: float, rule: float, decode: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        PartialScheduler(interval, rule, decode_ms=decode)
