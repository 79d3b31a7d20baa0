"""Alarms and timers as pure functions (capabilities/alerts.py, B-AL-01/03/07): fixed
clock in UTC+1, hand-made Alerts.AlertsState context, strict outbound validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest

from opencic.assistant import capabilities
from opencic.assistant.capabilities import alerts
from opencic.assistant.core import Assistant
from opencic.assistant.turn import DeviceContext
from opencic.assistant.understanding import IntentResult
from opencic.protocol.alert_time import wire_time
from opencic.protocol.messages import ContextObject, Event
from opencic.protocol.schema import validate_directive_strict
from opencic.speech import SpeechSynthesizer

ZONE = timezone(timedelta(hours=1))
NOW = datetime(2026, 11, 23, 20, 15, 0, tzinfo=ZONE)  # 19:15 UTC
DEVICE = DeviceContext("device-1")


def clock() -> datetime:
    return NOW


def intent(name: str, **slots: Any) -> IntentResult:
    return IntentResult(name, MappingProxyType(slots), "")


def event(*alerts_info: dict[str, Any], ringing: bool = False) -> Event:
    context = []
    if alerts_info:
        context.append(ContextObject("Alerts", "AlertsState", {
            "allAlerts": list(alerts_info), "activeAlerts": list(alerts_info) if ringing else []}))
    return Event.create("TextRecognizer", "Recognize", {"text": "x"}, dialog_request_id="d",
                        context=context)


@pytest.mark.parametrize(("hour", "minute", "meridiem", "expected"), [
    (7, 30, "a", datetime(2026, 11, 24, 7, 30, tzinfo=ZONE)),   # tomorrow morning
    (9, 0, "p", datetime(2026, 11, 23, 21, 0, tzinfo=ZONE)),    # tonight
    (9, 0, None, datetime(2026, 11, 23, 21, 0, tzinfo=ZONE)),   # the next 9 o'clock
    (8, 0, None, datetime(2026, 11, 24, 8, 0, tzinfo=ZONE)),    # 20:00 passed: 08:00
    (20, 15, None, datetime(2026, 11, 24, 20, 15, tzinfo=ZONE)),  # now: tomorrow
    (12, 0, "a", datetime(2026, 11, 24, 0, 0, tzinfo=ZONE)),    # midnight
    (12, 0, "p", datetime(2026, 11, 24, 12, 0, tzinfo=ZONE)),   # noon
    (0, 5, None, datetime(2026, 11, 24, 0, 5, tzinfo=ZONE)),
])
def test_next_alarm_time(hour: int, minute: int, meridiem: str | None, expected: datetime) -> None:
    assert alerts.next_alarm_time(hour, minute, meridiem, NOW) == expected


@pytest.mark.parametrize(("hour", "minute", "meridiem"), [(13, 0, "p"), (24, 0, None), (7, 60, None), (0, 0, "a")])
def test_impossible_times(hour: int, minute: int, meridiem: str | None) -> None:
    assert alerts.next_alarm_time(hour, minute, meridiem, NOW) is None


def test_set_alarm_is_set_alert_alone_and_stored_first() -> None:
    response = alerts.set_alarm(intent("SetAlarm", hour=7, minute=30, meridiem="a.m."), event(), DEVICE, clock)
    assert response.speech is None and response.display is None  # B-AL-01/03
    (directive,) = response.directives
    validate_directive_strict(directive)
    assert directive.qualified_name == "Alerts.SetAlert"
    assert directive.payload["type"] == "ALARM"
    assert directive.payload["scheduledTime"] == "2026-11-24T06:30:00Z"  # UTC, documented form
    (effect,) = response.effects
    assert isinstance(effect, alerts.SaveAlert) and effect.payload == directive.payload
    assert effect.scheduled_at == datetime(2026, 11, 24, 6, 30, tzinfo=UTC).timestamp()


def test_set_timer_and_limits() -> None:
    response = alerts.set_timer(intent("SetTimer", duration=90, unit="second"), event(), DEVICE, clock)
    assert response.directives[0].payload["scheduledTime"] == "2026-11-23T19:16:30Z"
    assert alerts.set_timer(intent("SetTimer", duration=25, unit="hour"), event(), DEVICE, clock).speech \
        == alerts.BAD_DURATION
    assert alerts.set_alarm(intent("SetAlarm", hour=31), event(), DEVICE, clock).speech == alerts.BAD_TIME


def test_questions_only_when_something_is_missing() -> None:
    assert alerts.ask_alarm_time(intent("SetAlarm"), event()) is not None
    assert alerts.ask_alarm_time(intent("SetAlarm", hour=7), event()) is None
    assert alerts.ask_timer_duration(intent("SetTimer"), event()) is not None
    assert alerts.ask_timer_duration(intent("SetTimer", duration=3, unit="minute"), event()) is None


ALARM = {"token": "a-1", "type": "ALARM", "scheduledTime": "2026-11-24T06:30:00Z"}
TIMER = {"token": "t-1", "type": "TIMER", "scheduledTime": "2026-11-23T19:20:00Z"}


def test_stop_acts_on_what_rings() -> None:  # B-AL-07
    assert alerts.stop_alert(intent("StopAlert"), event(ALARM), DEVICE, clock).speech == alerts.NOTHING_RINGING
    response = alerts.stop_alert(intent("StopAlert", kind="ALARM"), event(ALARM, ringing=True), DEVICE, clock)
    assert [d.payload for d in response.directives] == [{"token": "a-1", "type": "ALARM"}]
    assert response.speech is None


def test_cancel_and_list_use_the_reported_alerts() -> None:
    cancel = alerts.cancel_alerts(intent("CancelAlerts", kind="TIMER"), event(ALARM, TIMER), DEVICE, clock)
    assert [d.qualified_name for d in cancel.directives] == ["Alerts.DeleteAlert"]
    assert cancel.directives[0].payload == {"token": "t-1", "type": "TIMER"}
    assert cancel.effects == (alerts.MarkAlert("t-1"),)
    assert cancel.speech == "Cancelled 1 timer."
    assert alerts.cancel_alerts(intent("CancelAlerts", kind="ALARM"), event(), DEVICE, clock).speech \
        == "You have no alarms."
    listed = alerts.list_alerts(intent("ListAlerts"), event(ALARM, TIMER), DEVICE, clock)
    assert listed.speech == ("You have 2 alerts: a timer at 8:20 PM, "
                             "an alarm at 7:30 AM tomorrow.")


def test_confirmation_templates_pass_strict_validation() -> None:  # B-AL-03
    words, template = alerts.confirmation(ALARM, NOW)
    assert words == "Alarm set for 7:30 AM tomorrow."
    assert template is not None
    validate_directive_strict(template)
    words, template = alerts.confirmation(TIMER, NOW)
    assert words == "Timer set for 5 minutes."
    assert template is not None
    validate_directive_strict(template)


@pytest.mark.parametrize("name", sorted(capabilities.ACCOUNT_INTENTS))
def test_guest_gets_expect_login_for_account_features(
        name: str, synthesizer: SpeechSynthesizer) -> None:
    assistant = Assistant(synthesizer, clock=clock)
    guest = DeviceContext("guest-1", guest=True)
    response = assistant.respond(intent(name, hour=7, duration=5, unit="minute"), event(), guest)
    assert [d.qualified_name for d in response.directives] == ["Clova.ExpectLogin"]
    assert response.directives[0].payload == {}
    validate_directive_strict(response.directives[0])
    assert response.effects == ()


# ------------------------------------------------------------------ repeating alarms


@pytest.mark.parametrize(("slots", "days", "expected"), [
    # 2026-11-23 is a Monday, 20:15 now: the next weekday 07:00 is Tuesday.
    ({"hour": 7, "repeat": "01234"}, "01234", datetime(2026, 11, 24, 7, 0, tzinfo=ZONE)),
    # "every day at 7" is a morning alarm, not the next 7 o'clock (19:00 has passed
    # anyway, but 9 would otherwise be 21:00 tonight).
    ({"hour": 9, "repeat": "0123456"}, "0123456", datetime(2026, 11, 24, 9, 0, tzinfo=ZONE)),
    ({"hour": 9, "meridiem": "pm", "repeat": "0123456"}, "0123456",
     datetime(2026, 11, 23, 21, 0, tzinfo=ZONE)),
    ({"hour": 8, "minute": 30, "repeat": "56"}, "56", datetime(2026, 11, 28, 8, 30, tzinfo=ZONE)),
    ({"hour": 6, "repeat": "0"}, "0", datetime(2026, 11, 30, 6, 0, tzinfo=ZONE)),  # next Monday
])
def test_a_repeating_alarm_is_its_next_occurrence_and_keeps_its_days(
        slots: dict[str, Any], days: str, expected: datetime) -> None:
    response = alerts.set_alarm(intent("SetAlarm", **slots), event(), DEVICE, clock)
    (directive,) = response.directives
    validate_directive_strict(directive)
    assert directive.payload["scheduledTime"] == wire_time(expected)  # B-AL-10: one
    (save,) = response.effects
    assert save.repeat_days == days and save.scheduled_at == expected.timestamp()


def test_next_on_days_keeps_the_wall_clock_time_across_a_dst_change() -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    saturday = datetime(2026, 3, 28, 7, 0, tzinfo=berlin)  # CET; Sunday 29th is CEST
    after = alerts.next_on_days(7, 0, "0123456", saturday)
    assert (after.day, after.hour, after.minute) == (29, 7, 0)
    assert after.timestamp() - saturday.timestamp() == 23 * 3600  # the short night


@pytest.mark.parametrize(("days", "words", "period", "listed"), [
    ("0123456", "Alarm set for 7:00 AM every day.", "daily", []),
    ("01234", "Alarm set for 7:00 AM every weekday.", "weekly",
     ["monday", "tuesday", "wednesday", "thursday", "friday"]),
    ("13", "Alarm set for 7:00 AM every Tuesday and Thursday.", "weekly", ["tuesday", "thursday"]),
    (None, "Alarm set for 7:00 AM tomorrow.", "", []),
])
def test_a_repeating_alarm_is_confirmed_with_its_days(
        days: str | None, words: str, period: str, listed: list[str]) -> None:
    payload = alerts.set_alert_payload("ALARM", datetime(2026, 11, 24, 7, 0, tzinfo=ZONE))
    said, template = alerts.confirmation(payload, NOW, repeat_days=days)
    assert said == words
    assert template is not None
    validate_directive_strict(template)
    assert template.payload["repeatPeriod"] == {"type": "string", "value": period}
    assert [d["value"] for d in template.payload["repeatDay"]] == listed


def test_korean_confirms_the_days_too() -> None:
    from opencic.assistant.locales import locale_for

    payload = alerts.set_alert_payload("ALARM", datetime(2026, 11, 24, 7, 0, tzinfo=ZONE))
    said, _ = alerts.confirmation(payload, NOW, locale_for("ko"), repeat_days="01234")
    assert said.startswith("평일마다 ")
