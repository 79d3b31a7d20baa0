"""Phrasings to intents and slots, with the real hassil matcher and our en.yaml."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from opencic.assistant.capabilities import CAPABILITIES
from opencic.assistant.understanding import (
    FALLBACK,
    INTENT_NAMES,
    IntentRecognizer,
    load_intents,
)

CASES: list[tuple[str, str, dict[str, Any]]] = [
    # GetTime
    ("what time is it", "GetTime", {}),
    ("What time is it?", "GetTime", {}),
    ("what's the time", "GetTime", {}),
    ("whats the time", "GetTime", {}),
    ("what is the time", "GetTime", {}),
    ("tell me the time", "GetTime", {}),
    ("please tell me the time", "GetTime", {}),
    ("what time is it right now", "GetTime", {}),
    ("what's the current time", "GetTime", {}),
    ("do you know what time it is", "GetTime", {}),
    ("can you tell me the time", "GetTime", {}),
    ("Clova, what time is it?", "GetTime", {}),
    ("time", "GetTime", {}),
    # GetDate
    ("what is the date today", "GetDate", {}),
    ("what's the date", "GetDate", {}),
    ("what's today's date", "GetDate", {}),
    ("what is today's date", "GetDate", {}),
    ("what day is it", "GetDate", {}),
    ("what day is it today", "GetDate", {}),
    ("what day is today", "GetDate", {}),
    ("what day of the week is it", "GetDate", {}),
    ("what is today", "GetDate", {}),
    ("tell me the date", "GetDate", {}),
    ("date", "GetDate", {}),
    # Greeting
    ("hello", "Greeting", {}),
    ("Hello!", "Greeting", {}),
    ("hi", "Greeting", {}),
    ("hi there", "Greeting", {}),
    ("hey", "Greeting", {}),
    ("hey clova", "Greeting", {}),
    ("good morning", "Greeting", {"part_of_day": "morning"}),
    ("Good afternoon.", "Greeting", {"part_of_day": "afternoon"}),
    ("good evening", "Greeting", {"part_of_day": "evening"}),
    ("good night", "Greeting", {"part_of_day": "night"}),
    ("how are you", "Greeting", {"kind": "how_are_you"}),
    ("how are you doing today", "Greeting", {"kind": "how_are_you"}),
    # Help
    ("help", "Help", {}),
    ("help me", "Help", {}),
    ("what can you do", "Help", {}),
    ("What can you do?", "Help", {}),
    ("what can I say", "Help", {}),
    ("what can I ask you", "Help", {}),
    ("how does this work", "Help", {}),
    ("I need help", "Help", {}),
    # VolumeUp
    ("turn the volume up", "VolumeUp", {}),
    ("turn up the volume", "VolumeUp", {}),
    ("volume up", "VolumeUp", {}),
    ("louder", "VolumeUp", {}),
    ("a bit louder", "VolumeUp", {}),
    ("a little louder please", "VolumeUp", {}),
    ("speak louder", "VolumeUp", {}),
    ("can you make it louder", "VolumeUp", {}),
    ("turn it up", "VolumeUp", {}),
    ("increase the volume", "VolumeUp", {}),
    ("raise the volume a bit", "VolumeUp", {}),
    ("I can't hear you", "VolumeUp", {}),
    ("turn the volume up by 3", "VolumeUp", {"amount": 3, "unit": "step"}),
    ("increase the volume by 2 steps", "VolumeUp", {"amount": 2, "unit": "step"}),
    ("turn the volume up by 20 percent", "VolumeUp", {"amount": 20, "unit": "percent"}),
    ("volume up by 10%", "VolumeUp", {"amount": 10, "unit": "percent"}),
    # VolumeDown
    ("volume down", "VolumeDown", {}),
    ("turn the volume down", "VolumeDown", {}),
    ("turn down the volume", "VolumeDown", {}),
    ("quieter", "VolumeDown", {}),
    ("a little quieter", "VolumeDown", {}),
    ("softer", "VolumeDown", {}),
    ("turn it down", "VolumeDown", {}),
    ("lower the volume", "VolumeDown", {}),
    ("decrease the volume", "VolumeDown", {}),
    ("it's too loud", "VolumeDown", {}),
    ("decrease the volume by 10%", "VolumeDown", {"amount": 10, "unit": "percent"}),
    ("turn the volume down by two", "VolumeDown", {"amount": 2, "unit": "step"}),
    # VolumeSet
    ("set the volume to 5", "VolumeSet", {"level": 5, "unit": "step"}),
    ("set volume to 5", "VolumeSet", {"level": 5, "unit": "step"}),
    ("set the volume to five", "VolumeSet", {"level": 5, "unit": "step"}),
    ("set volume to 40 percent", "VolumeSet", {"level": 40, "unit": "percent"}),
    ("set volume to 40%", "VolumeSet", {"level": 40, "unit": "percent"}),
    ("set the volume at 60 percent", "VolumeSet", {"level": 60, "unit": "percent"}),
    ("change the volume to 8", "VolumeSet", {"level": 8, "unit": "step"}),
    ("volume 7", "VolumeSet", {"level": 7, "unit": "step"}),
    ("volume to 3", "VolumeSet", {"level": 3, "unit": "step"}),
    ("turn the volume down to 2", "VolumeSet", {"level": 2, "unit": "step"}),
    ("turn the volume up to 9", "VolumeSet", {"level": 9, "unit": "step"}),
    ("set the volume to level 4", "VolumeSet", {"level": 4, "unit": "step"}),
    ("set the volume to 0", "VolumeSet", {"level": 0, "unit": "step"}),
    ("max volume", "VolumeSet", {"level": 100, "unit": "percent"}),
    ("set the volume to maximum", "VolumeSet", {"level": 100, "unit": "percent"}),
    ("minimum volume", "VolumeSet", {"level": 0, "unit": "percent"}),
    # Mute / Unmute
    ("mute", "Mute", {}),
    ("Mute.", "Mute", {}),
    ("mute the sound", "Mute", {}),
    ("mute the speaker", "Mute", {}),
    ("turn off the sound", "Mute", {}),
    ("be quiet", "Mute", {}),
    ("unmute", "Unmute", {}),
    ("unmute the speaker", "Unmute", {}),
    ("turn the sound back on", "Unmute", {}),
    ("turn on the sound", "Unmute", {}),
    # Alarms and timers (capabilities/alerts.py)
    ("set an alarm for 7", "SetAlarm", {"hour": 7}),
    ("set an alarm for 7:30 am", "SetAlarm", {"hour": 7, "minute": 30, "meridiem": "am"}),
    ("Set an alarm for 6.45 p.m.", "SetAlarm", {"hour": 6, "minute": 45, "meridiem": "p.m."}),
    ("wake me up at 6 o'clock in the morning", "SetAlarm", {"hour": 6, "meridiem": "am"}),
    ("set an alarm", "SetAlarm", {}),
    # Repeating alarms: weekday digits, Monday = 0.
    ("set an alarm for 7 every weekday", "SetAlarm", {"hour": 7, "repeat": "01234"}),
    ("Wake me up every day at 6:30.", "SetAlarm", {"hour": 6, "minute": 30, "repeat": "0123456"}),
    ("set a daily alarm for 7 pm", "SetAlarm", {"hour": 7, "meridiem": "pm", "repeat": "0123456"}),
    ("wake me up at 9 on weekends", "SetAlarm", {"hour": 9, "repeat": "56"}),
    ("set a repeating alarm every monday at 8 am", "SetAlarm",
     {"hour": 8, "meridiem": "am", "repeat": "0"}),
    ("set an alarm every weekday", "SetAlarm", {"repeat": "01234"}),  # asks for the time
    ("set a timer for 5 minutes", "SetTimer", {"duration": 5, "unit": "minute"}),
    ("set a 10 second timer", "SetTimer", {"duration": 10, "unit": "second"}),
    ("set a timer", "SetTimer", {}),
    ("stop the alarm", "StopAlert", {"kind": "ALARM"}),
    # Clock times as Whisper writes them ("seven thirty" -> "730.").
    ("Set an alarm for 730.", "SetAlarm", {"hour": 7, "minute": 30}),
    ("Set in alarm for 7.30.", "SetAlarm", {"hour": 7, "minute": 30}),
    ("set an alarm for 9.15pm", "SetAlarm", {"hour": 9, "minute": 15, "meridiem": "pm"}),
    ("wake me up at 7am.", "SetAlarm", {"hour": 7, "meridiem": "am"}),
    ("set the volume to 100", "VolumeSet", {"level": 100, "unit": "step"}),
    ("cancel all my timers", "CancelAlerts", {"kind": "TIMER"}),
    ("what alarms do I have", "ListAlerts", {"kind": "ALARM"}),
    # Nothing we can do
    ("what's the weather", FALLBACK, {}),
    ("play some music", FALLBACK, {}),
    ("set an alarm for 25", FALLBACK, {}),
    ("banana", FALLBACK, {}),
    ("set the volume to 500", FALLBACK, {}),
    ("", FALLBACK, {}),
    ("   ", FALLBACK, {}),
]


@pytest.mark.parametrize(("text", "intent", "slots"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_phrasing(
    recognizer: IntentRecognizer, text: str, intent: str, slots: dict[str, Any]
) -> None:
    result = recognizer.recognize(text)
    assert result.name == intent, f"{text!r} -> {result.name} {dict(result.slots)}"
    assert dict(result.slots) == slots
    assert result.text == text


def test_every_intent_has_a_capability_and_templates(recognizer: IntentRecognizer) -> None:
    assert set(INTENT_NAMES) == recognizer.intent_names
    assert set(CAPABILITIES) == {*INTENT_NAMES, FALLBACK}


def test_every_intent_is_covered_by_the_phrasings() -> None:
    assert {intent for _, intent, _ in CASES} == {*INTENT_NAMES, FALLBACK}


def test_home_assistant_skip_words_are_merged() -> None:
    merged = load_intents("en").skip_words
    own = load_intents("en", home_assistant_skip_words=False).skip_words
    assert "clova" in own
    assert "please" in merged and "can you" in merged
    assert len(merged) == len(set(merged))


def test_overlong_text_is_not_matched(recognizer: IntentRecognizer) -> None:
    assert recognizer.recognize("what time is it " * 40).is_fallback


def test_extra_template_file_adds_phrasing(tmp_path: Any) -> None:
    extra = tmp_path / "site.yaml"
    extra.write_text(
        "language: en\nintents:\n  GetTime:\n    data:\n      - sentences:\n"
        '          - "how late is it over there"\n',
        encoding="utf-8",
    )
    custom = IntentRecognizer.from_files(extra)
    assert custom.recognize("how late is it over there").name == "GetTime"
    # The built-in phrasings are still there.
    assert custom.recognize("what time is it").name == "GetTime"


def test_matching_is_fast(recognizer: IntentRecognizer) -> None:
    texts = [text for text, _, _ in CASES]
    timings = []
    for _ in range(3):
        for text in texts:
            start = time.perf_counter()
            recognizer.recognize(text)
            timings.append(time.perf_counter() - start)
    median_ms = statistics.median(timings) * 1000
    print(
        f"\nintent match: median {median_ms:.3f} ms, max {max(timings) * 1000:.2f} ms "
        f"over {len(timings)} utterances"
    )
    assert median_ms < 5.0


@pytest.mark.parametrize(("text", "slots"), [
    ("730.", {"hour": 7, "minute": 30}), ("645 pm", {"hour": 6, "minute": 45, "meridiem": "pm"}),
    ("At 7am.", {"hour": 7, "meridiem": "am"}), ("8 pm.", {"hour": 8, "meridiem": "pm"}),
])
def test_spoken_answer_times(recognizer: IntentRecognizer, text: str, slots: dict[str, Any]) -> None:
    result = recognizer.recognize(text, {"expecting": "AnswerTime"})
    assert (result.name, dict(result.slots)) == ("AnswerTime", slots)
