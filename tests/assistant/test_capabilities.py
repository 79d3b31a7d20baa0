"""Capabilities as pure functions: fixed clock, hand-made context, no TTS."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest

from opencic.assistant.capabilities import fallback, greeting, help, time, volume
from opencic.assistant.turn import DeviceContext, IntentResponse
from opencic.assistant.understanding import IntentResult
from opencic.protocol.messages import ContextObject, Event

# Server local zone UTC+1, so nothing depends on the host's TZ; 23:42 there is 22:42 UTC.
FIXED_NOW = datetime(2026, 11, 23, 23, 42, 5, tzinfo=timezone(timedelta(hours=1)))


def fixed_clock() -> datetime:
    return FIXED_NOW


DEVICE = DeviceContext("device-1", "OpenCIC/0.1.0 (Linux; x86_64)")


def intent(name: str, text: str = "", **slots: Any) -> IntentResult:
    return IntentResult(name, MappingProxyType(slots), text)


def recognize_event(*context: ContextObject, text: str = "x") -> Event:
    return Event.create(
        "TextRecognizer",
        "Recognize",
        {"text": text},
        dialog_request_id="dlg-1",
        context=list(context),
    )


def device_state(**payload: Any) -> ContextObject:
    return ContextObject("Device", "DeviceState", payload)


def speaker(volume_level: float, muted: bool = False) -> ContextObject:
    return ContextObject("Speaker", "VolumeState", {"volume": volume_level, "muted": muted})


def volume_object(
    value: float,
    lo: float = 0,
    hi: float = 15,
    actions: tuple[str, ...] = ("Decrease", "Increase", "SetValue"),
) -> ContextObject:
    return device_state(volume={"actions": list(actions), "min": lo, "max": hi, "value": value})


def clock_at(*args: int, offset_hours: float = 1) -> Any:
    moment = datetime(*args, tzinfo=timezone(timedelta(hours=offset_hours)))  # type: ignore[misc]
    return lambda: moment


def only_directive(response: IntentResponse) -> tuple[str, dict[str, Any]]:
    assert response.speech is None and response.display is None  # B-SR-11
    assert len(response.directives) == 1
    directive = response.directives[0]
    assert directive.dialog_request_id is None  # the core stamps it
    return directive.qualified_name, directive.payload


# --------------------------------------------------------------------------- time


def test_time_in_server_zone_without_device_context() -> None:
    response = time.get_time(intent("GetTime"), recognize_event(), DEVICE, fixed_clock)
    assert response.display == "It's 11:42 PM."
    assert response.speech == "It's 11 42 PM."
    assert not response.directives


@pytest.mark.parametrize(
    ("local_time", "display"),
    [
        ("2019-08-30T10:00:00+09:00", "It's 7:42 AM."),  # 22:42 UTC + 9 h, next day
        ("2026-11-23T17:42:00-05:00", "It's 5:42 PM."),
        ("2026-11-23T22:42:00Z", "It's 10:42 PM."),
        ("2026-11-23T22:42:00+00:00", "It's 10:42 PM."),
        ("2026-11-24T04:12:00+05:30", "It's 4:12 AM."),
        ("2026-11-23T22:42:00", "It's 11:42 PM."),  # no offset: server zone
        ("not a time", "It's 11:42 PM."),
        ("2026-11-23T22:42:00+23:00", "It's 11:42 PM."),  # impossible offset: ignored
    ],
)
def test_time_uses_the_device_offset(local_time: str, display: str) -> None:
    event = recognize_event(device_state(localTime=local_time))
    assert time.get_time(intent("GetTime"), event, DEVICE, fixed_clock).display == display


def test_time_ignores_non_string_local_time() -> None:
    event = recognize_event(device_state(localTime=12345))
    assert time.get_time(intent("GetTime"), event, DEVICE, fixed_clock).display == "It's 11:42 PM."


def test_device_offset_uses_our_clock_not_the_device_clock() -> None:
    # The device's clock is an hour fast; only its zone counts.
    event = recognize_event(device_state(localTime="2026-11-24T08:42:00+09:00"))
    assert time.device_now(event, fixed_clock) == FIXED_NOW
    assert time.device_now(event, fixed_clock).utcoffset() == timedelta(hours=9)


@pytest.mark.parametrize(
    ("hour", "minute", "speech", "display"),
    [
        (0, 0, "It's 12 AM.", "It's 12:00 AM."),
        (0, 5, "It's 12 oh 5 AM.", "It's 12:05 AM."),
        (7, 0, "It's 7 AM.", "It's 7:00 AM."),
        (9, 30, "It's 9 30 AM.", "It's 9:30 AM."),
        (12, 0, "It's 12 PM.", "It's 12:00 PM."),
        (12, 1, "It's 12 oh 1 PM.", "It's 12:01 PM."),
        (13, 10, "It's 1 10 PM.", "It's 1:10 PM."),
        (23, 59, "It's 11 59 PM.", "It's 11:59 PM."),
    ],
)
def test_time_formatting(hour: int, minute: int, speech: str, display: str) -> None:
    assert time.format_time(datetime(2026, 1, 1, hour, minute)) == (speech, display)


def test_date_in_server_zone() -> None:
    response = time.get_date(intent("GetDate"), recognize_event(), DEVICE, fixed_clock)
    assert response.display == "Today is Monday, November 23, 2026."
    assert response.speech == "Today is Monday, November 23rd, 2026."


def test_date_follows_the_device_across_midnight() -> None:
    event = recognize_event(device_state(localTime="2026-11-24T07:42:00+09:00"))
    response = time.get_date(intent("GetDate"), event, DEVICE, fixed_clock)
    assert response.display == "Today is Tuesday, November 24, 2026."
    assert response.speech == "Today is Tuesday, November 24th, 2026."


@pytest.mark.parametrize(
    ("day", "spoken"),
    [
        (1, "1st"),
        (2, "2nd"),
        (3, "3rd"),
        (4, "4th"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (21, "21st"),
        (22, "22nd"),
        (23, "23rd"),
        (31, "31st"),
    ],
)
def test_date_ordinals(day: int, spoken: str) -> None:
    speech, display = time.format_date(datetime(2026, 12, day))
    assert f"December {spoken}, 2026." in speech
    assert f"December {day}, 2026." in display


# --------------------------------------------------------------------------- greeting, help


def test_hello() -> None:
    response = greeting.greet(intent("Greeting"), recognize_event(), DEVICE, fixed_clock)
    assert response.speech == response.display == "Hello! How can I help you?"


@pytest.mark.parametrize(
    ("hour", "expected"),
    [
        (6, "Good morning!"),
        (11, "Good morning!"),
        (12, "Good afternoon!"),
        (17, "Good afternoon!"),
        (18, "Good evening!"),
        (23, "Good evening!"),
        (2, "Good evening!"),
    ],
)
def test_good_part_of_day_follows_the_clock(hour: int, expected: str) -> None:
    response = greeting.greet(
        intent("Greeting", part_of_day="morning"),
        recognize_event(),
        DEVICE,
        clock_at(2026, 11, 23, hour, 0),
    )
    assert response.speech is not None and response.speech.startswith(expected)


def test_good_morning_in_the_devices_zone() -> None:
    # 23:42 at the server (UTC+1) is 07:42 in Tokyo.
    event = recognize_event(device_state(localTime="2026-11-24T07:42:00+09:00"))
    response = greeting.greet(intent("Greeting", part_of_day="evening"), event, DEVICE, fixed_clock)
    assert response.speech == "Good morning! How can I help you?"


def test_good_night_and_how_are_you() -> None:
    night = greeting.greet(
        intent("Greeting", part_of_day="night"), recognize_event(), DEVICE, fixed_clock
    )
    assert night.speech == "Good night! Sleep well."
    fine = greeting.greet(
        intent("Greeting", kind="how_are_you"), recognize_event(), DEVICE, fixed_clock
    )
    assert fine.speech is not None and fine.speech.startswith("I'm doing well")


def test_help() -> None:
    response = help.help_(intent("Help"), recognize_event(), DEVICE, fixed_clock)
    assert response.speech == help.HELP_SPEECH
    assert response.display is not None and "What time is it?" in response.display
    assert not response.directives


# --------------------------------------------------------------------------- fallback


def test_fallback_speaks_a_fixed_sentence_and_shows_the_text() -> None:
    response = fallback.fallback(
        intent("Fallback", "what's the weather"), recognize_event(), DEVICE, fixed_clock
    )
    assert (
        response.speech
        == "Sorry, I didn't understand that. You can say help to hear what I can do."
    )
    assert response.display is not None and '"what\'s the weather"' in response.display


def test_fallback_for_nothing_and_for_a_very_long_text() -> None:
    empty = fallback.fallback(intent("Fallback", "  "), recognize_event(), DEVICE, fixed_clock)
    assert empty.speech is not None and "didn't catch that" in empty.speech
    long = fallback.fallback(
        intent("Fallback", "blah " * 100), recognize_event(), DEVICE, fixed_clock
    )
    assert long.display is not None and "…" in long.display and len(long.display) < 160


# --------------------------------------------------------------------------- volume


def test_volume_up_without_context_lets_the_device_pick_the_step() -> None:
    response = volume.volume_up(intent("VolumeUp"), recognize_event(), DEVICE, fixed_clock)
    assert only_directive(response) == ("DeviceControl.Increase", {"target": "volume"})


def test_volume_down_without_context() -> None:
    response = volume.volume_down(intent("VolumeDown"), recognize_event(), DEVICE, fixed_clock)
    assert only_directive(response) == ("DeviceControl.Decrease", {"target": "volume"})


def test_volume_up_by_steps_and_by_percent_of_the_device_range() -> None:
    event = recognize_event(volume_object(2, 0, 15))
    by_steps = volume.volume_up(
        intent("VolumeUp", amount=3.0, unit="step"), event, DEVICE, fixed_clock
    )
    assert only_directive(by_steps) == (
        "DeviceControl.Increase",
        {"target": "volume", "value": "3"},
    )
    by_percent = volume.volume_up(
        intent("VolumeUp", amount=20.0, unit="percent"), event, DEVICE, fixed_clock
    )
    assert only_directive(by_percent)[1]["value"] == "3"  # 20 % of 0-15


def test_volume_relative_amount_is_clamped_to_the_range() -> None:
    event = recognize_event(volume_object(13, 0, 15))
    response = volume.volume_up(
        intent("VolumeUp", amount=5.0, unit="step"), event, DEVICE, fixed_clock
    )
    assert only_directive(response)[1]["value"] == "2"
    down = volume.volume_down(
        intent("VolumeDown", amount=50.0, unit="step"),
        recognize_event(volume_object(4, 1, 15)),
        DEVICE,
        fixed_clock,
    )
    assert only_directive(down)[1]["value"] == "3"


def test_volume_at_the_limits_is_spoken_not_sent() -> None:
    at_max = volume.volume_up(
        intent("VolumeUp"), recognize_event(volume_object(15)), DEVICE, fixed_clock
    )
    assert at_max.speech == volume.AT_MAXIMUM and not at_max.directives
    at_min = volume.volume_down(
        intent("VolumeDown"), recognize_event(speaker(0)), DEVICE, fixed_clock
    )
    assert at_min.speech == volume.AT_MINIMUM and not at_min.directives


def test_volume_refused_when_the_device_lacks_the_action() -> None:
    # B-DV-01: check actions[]; when the device cannot, answer with a Speak instead.
    event = recognize_event(volume_object(5, actions=("SetValue",)))
    response = volume.volume_up(intent("VolumeUp"), event, DEVICE, fixed_clock)
    assert response.speech == volume.CANNOT and not response.directives
    ok = volume.volume_set(intent("VolumeSet", level=3.0, unit="step"), event, DEVICE, fixed_clock)
    assert only_directive(ok)[0] == "DeviceControl.SetValue"
    none = recognize_event(volume_object(5, actions=()))
    refused = volume.volume_set(
        intent("VolumeSet", level=3.0, unit="step"), none, DEVICE, fixed_clock
    )
    assert refused.speech == volume.CANNOT


@pytest.mark.parametrize(
    ("context", "level", "unit", "value"),
    [
        ((), 5.0, "step", "5"),  # no context: 0-10 scale
        ((), 40.0, "percent", "4"),
        ((), 40.0, "step", "4"),  # above the scale: read as percent
        ((), 100.0, "percent", "10"),
        ((), 0.0, "percent", "0"),
        ((speaker(25),), 40.0, "step", "40"),  # #25: volume 25 > 10 means a 0-100 scale
        ((speaker(25),), 40.0, "percent", "40"),
        ((volume_object(7, 0, 15),), 5.0, "step", "5"),
        ((volume_object(7, 0, 15),), 40.0, "percent", "6"),
        ((volume_object(7, 0, 15),), 50.0, "percent", "8"),  # 7.5 rounds half up
        ((volume_object(7, 0, 15),), 100.0, "percent", "15"),
        ((volume_object(7, 0, 15),), 20.0, "step", "3"),  # 20 > 15: 20 % of 15
        ((volume_object(7, 2, 12),), 0.0, "percent", "2"),  # min is not 0
        ((volume_object(7, 2, 12),), 1.0, "step", "2"),  # clamped to min
        ((volume_object(7, 2, 12), speaker(3)), 50.0, "percent", "7"),  # DeviceState wins
    ],
)
def test_volume_set_levels(
    context: tuple[ContextObject, ...], level: float, unit: str, value: str
) -> None:
    response = volume.volume_set(
        intent("VolumeSet", level=level, unit=unit), recognize_event(*context), DEVICE, fixed_clock
    )
    assert only_directive(response) == (
        "DeviceControl.SetValue",
        {"target": "volume", "value": value},
    )


def test_volume_set_without_a_level() -> None:
    response = volume.volume_set(intent("VolumeSet"), recognize_event(), DEVICE, fixed_clock)
    assert response.speech == volume.NO_LEVEL and not response.directives


def test_volume_info_tolerates_junk_context() -> None:
    event = recognize_event(
        device_state(volume={"min": "0", "max": None, "value": True, "actions": "Increase"}),
        ContextObject("Speaker", "VolumeState", {"volume": -3, "muted": "yes"}),
    )
    info = volume.volume_info(event)
    assert (info.minimum, info.maximum, info.current, info.muted, info.actions) == (
        0.0,
        10.0,
        None,
        None,
        None,
    )
    assert only_directive(volume.volume_up(intent("VolumeUp"), event, DEVICE, fixed_clock))


def test_mute_and_unmute_are_playback_controller_directives_without_speech() -> None:
    muted = recognize_event(speaker(5, muted=True))
    assert only_directive(volume.mute(intent("Mute"), muted, DEVICE, fixed_clock)) == (
        "PlaybackController.Mute",
        {},
    )
    assert only_directive(volume.unmute(intent("Unmute"), muted, DEVICE, fixed_clock)) == (
        "PlaybackController.Unmute",
        {},
    )
