"""Alarms and timers by voice (B-AL-01..10), as pure functions.

Decisions, from the contract:

* "Set an alarm for 7:30" is answered with Alerts.SetAlert and nothing else (B-AL-01);
  the spoken confirmation and the Alarm/Timer template come when the device reports
  SetAlertSucceeded (B-AL-03, ``assistant/device_events.py``). The alert is stored
  before the answer leaves (the :class:`SaveAlert` effect), so an acknowledged request
  is never lost.
* ``scheduledTime`` is sent in UTC as ``YYYY-MM-DDThh:mm:ssZ``, the documented form;
  the hour the user said is read in the server's local time zone (the clock's).
* An hour without am/pm is the next time that hour comes round, whichever half of the
  day that is ("at 7" at 20:00 is 07:00 tomorrow, at 06:00 it is 07:00 today).
* Alarms may repeat ("every weekday at 7", slot ``repeat``: weekday digits, Monday =
  0). Only the next occurrence is ever sent (B-AL-10); the store keeps the days, and
  after the device reports AlertStopped the same token gets a SetAlert for the next
  one (B-AL-09, ``device_events``). A repeating alarm without am/pm before noon is a
  morning alarm ("every day at 7" is 07:00), not the next 7 o'clock.
* Stopping and cancelling by voice act on what the device reports in its
  Alerts.AlertsState context (B-CX-02: copied from our directives): "stop the alarm"
  sends StopAlert for the ringing ones (B-AL-07), "cancel my alarms" DeleteAlert for
  each matching one.
* Alerts belong to an account: a guest-mode token gets Clova.ExpectLogin instead
  (auth.md §4; the core checks :data:`ACCOUNT_INTENTS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ...protocol.alert_time import parse_wire_time, wire_time
from ...protocol.ids import new_id
from ...protocol.messages import Directive, Event
from ..locales import ENGLISH, Locale, locale_for
from ..locales.en import ALARM, TIMER
from ..turn import Clock, DeviceContext, IntentResponse, Question
from ..understanding import IntentResult

TIME_ANSWER, DURATION_ANSWER = "AnswerTime", "AnswerDuration"
ACCOUNT_INTENTS = frozenset({"SetAlarm", "SetTimer", "CancelAlerts", "ListAlerts"})

ASK_TIME = "For what time?"
ASK_DURATION = "For how long?"
BAD_TIME = "Sorry, I didn't catch a time I can set an alarm for."
BAD_DURATION = "Sorry, timers can run from one second to twenty-four hours."
NOTHING_RINGING = "Nothing is ringing right now."
NO_ALERTS = {ALARM: "You have no alarms.", TIMER: "You have no timers.", None: "You have no alarms or timers."}
MAX_TIMER = timedelta(hours=24)
PHRASES = (ASK_TIME, ASK_DURATION, BAD_TIME, BAD_DURATION, NOTHING_RINGING, *NO_ALERTS.values())

_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600}
# The Alarm template's repeatDay values (templates.yaml: lower-case English names).
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class SaveAlert:
    """Effect: store this SetAlert payload for the device (status ``requested``)."""

    payload: dict[str, Any]
    scheduled_at: float
    repeat_days: str | None = None  # weekday digits, Monday = 0; None: one-off


@dataclass(frozen=True, slots=True)
class MarkAlert:
    """Effect: the device was sent DeleteAlert for this alert (status ``deleting``)."""

    token: str
    status: str = "deleting"


def next_alarm_time(hour: int, minute: int, meridiem: str | None, now: datetime) -> datetime | None:
    """The next moment at hour:minute (12-hour with ``meridiem``, else either half)."""
    if not 0 <= minute <= 59:
        return None
    if meridiem is not None:
        if not 1 <= hour <= 12:
            return None
        candidates = [hour % 12 + (12 if meridiem.startswith("p") else 0)]
    elif 1 <= hour <= 12:
        candidates = [hour % 12, hour % 12 + 12]
    elif 0 <= hour <= 23:
        candidates = [hour]
    else:
        return None
    options = []
    for h in candidates:
        at = now.replace(hour=h, minute=minute, second=0, microsecond=0)
        if at <= now:
            at += timedelta(days=1)
        options.append(at)
    return min(options)


def next_on_days(hour: int, minute: int, days: str, after: datetime) -> datetime:
    """The first hour:minute after ``after`` (local, its zone) on one of ``days``."""
    at = after.replace(hour=hour, minute=minute, second=0, microsecond=0)
    for _ in range(8):  # some day within a week matches: days is never empty
        if at > after and str(at.weekday()) in days:
            return at
        at += timedelta(days=1)  # wall-clock days: 07:00 stays 07:00 across DST
    raise ValueError(f"no weekday in {days!r}")


def repeat_days_of(value: Any) -> str | None:
    """The ``repeat`` slot as weekday digits, or None (one-off)."""
    if not isinstance(value, str):
        return None
    days = "".join(sorted(set(value)))
    return days if days and all(d in "0123456" for d in days) else None


def set_alert_payload(kind: str, when: datetime, token: str | None = None) -> dict[str, Any]:
    # assets/assetPlayOrder/label are only for REMINDER and ACTIONTIMER (interfaces.yaml).
    return {"token": token or new_id(), "type": kind, "scheduledTime": wire_time(when)}


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if float(value).is_integer() else None


def _meridiem(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    letter = value.replace(".", "").strip().lower()[:1]
    return letter if letter in ("a", "p") else None


def set_alarm(intent: IntentResult, event: Event, device: DeviceContext, clock: Clock) -> IntentResponse:
    now = clock()
    hour, minute = _int(intent.slot("hour")), _int(intent.slot("minute", 0))
    meridiem = _meridiem(intent.slot("meridiem"))
    days = repeat_days_of(intent.slot("repeat"))
    if days is not None and meridiem is None and hour is not None and 1 <= hour <= 11:
        meridiem = "a"  # "every day at 7" wakes at 07:00, whatever the time now
    when = None if hour is None or minute is None else next_alarm_time(hour, minute, meridiem, now)
    if when is None:
        return IntentResponse.say(BAD_TIME)
    if days is not None:
        when = next_on_days(when.hour, when.minute, days, now)
    payload = set_alert_payload(ALARM, when)
    response = IntentResponse.act(Directive.create("Alerts", "SetAlert", payload))
    return IntentResponse(None, None, response.directives,
                          (SaveAlert(payload, when.timestamp(), days),))


def set_timer(intent: IntentResult, event: Event, device: DeviceContext, clock: Clock) -> IntentResponse:
    amount, unit = _int(intent.slot("duration")), intent.slot("unit", "minute")
    seconds = None if amount is None else amount * _UNIT_SECONDS.get(str(unit), 60)
    if seconds is None or not 0 < seconds <= MAX_TIMER.total_seconds():
        return IntentResponse.say(BAD_DURATION)
    when = clock() + timedelta(seconds=seconds)
    payload = set_alert_payload(TIMER, when)
    return IntentResponse(None, None, (Directive.create("Alerts", "SetAlert", payload),),
                          (SaveAlert(payload, when.timestamp()),))


def ask_alarm_time(intent: IntentResult, event: Event) -> Question | None:
    if intent.slot("hour") is not None:
        return None
    return Question(ASK_TIME, TIME_ANSWER, hint="For what time? 7:30 am. At 6 pm.")


def ask_timer_duration(intent: IntentResult, event: Event) -> Question | None:
    if intent.slot("duration") is not None:
        return None
    return Question(ASK_DURATION, DURATION_ANSWER, hint="For how long? 5 minutes. 30 seconds.")


def _reported(event: Event, key: str) -> list[dict[str, Any]]:
    """Alerts the device lists in its Alerts.AlertsState context (B-AL-05, B-CX-02)."""
    state = event.context_payload("Alerts", "AlertsState") or {}
    items = state.get(key)
    if not isinstance(items, list):
        return []
    return [a for a in items if isinstance(a, dict) and isinstance(a.get("token"), str)
            and isinstance(a.get("type"), str)]


def _kind(intent: IntentResult) -> str | None:
    kind = intent.slot("kind")
    return kind.upper() if isinstance(kind, str) and kind.upper() in (ALARM, TIMER) else None


def stop_alert(intent: IntentResult, event: Event, device: DeviceContext, clock: Clock) -> IntentResponse:
    """A stop by voice (B-AL-07): StopAlert for what rings; the device says AlertStopped."""
    ringing = _reported(event, "activeAlerts")
    if not ringing:
        return IntentResponse.say(NOTHING_RINGING)
    return IntentResponse.act(*(
        Directive.create("Alerts", "StopAlert", {"token": a["token"], "type": a["type"]})
        for a in ringing))


def cancel_alerts(intent: IntentResult, event: Event, device: DeviceContext, clock: Clock) -> IntentResponse:
    kind = _kind(intent)
    targets = [a for a in _reported(event, "allAlerts") if kind is None or a["type"] == kind]
    if not targets:
        return IntentResponse.say(NO_ALERTS[kind])
    directives = tuple(Directive.create("Alerts", "DeleteAlert", {"token": a["token"], "type": a["type"]})
                       for a in targets)
    words = locale_for(intent.lang).cancelled(len(targets), kind)
    return IntentResponse(words, words, directives, tuple(MarkAlert(a["token"]) for a in targets))


def list_alerts(intent: IntentResult, event: Event, device: DeviceContext, clock: Clock) -> IntentResponse:
    kind = _kind(intent)
    now = clock()
    items = []
    for alert in _reported(event, "allAlerts"):
        when = parse_wire_time(alert.get("scheduledTime"))
        if (kind is None or alert["type"] == kind) and when is not None and when > now:
            items.append((when, alert["type"]))
    if not items:
        return IntentResponse.say(NO_ALERTS[kind])
    items.sort()
    more = max(0, len(items) - 5)
    return IntentResponse.say(locale_for(intent.lang).alert_list(items[:5], now, kind, more))


def confirmation(payload: dict[str, Any], now: datetime, locale: Locale = ENGLISH,
                 repeat_days: str | None = None) -> tuple[str, Directive | None]:
    """B-AL-03: what to say, and the Alarm/Timer template, once SetAlertSucceeded."""
    when = parse_wire_time(payload.get("scheduledTime"))
    token = str(payload.get("token", ""))
    if when is None:
        return "Done.", None
    common = {
        "token": {"type": "string", "value": token},
        "scheduledTime": {"type": "datetime", "value": wire_time(when)},
        "failureMessage": {"type": "string", "value": "This content cannot be shown."},
        "meta": {"version": {"type": "string", "value": "v0.1"}},
    }
    if payload.get("type") == TIMER:
        seconds = max(1, round((when - now).total_seconds()))
        return (locale.timer_set(seconds),
                Directive.create("Clova", "RenderTemplate", {"type": "Timer", **common}))
    if payload.get("type") == ALARM:
        days = "".join(sorted(repeat_days or ""))
        period = "" if not days else "daily" if days == "0123456" else "weekly"
        repeat_day = [] if period != "weekly" else [
            {"type": "string", "value": WEEKDAYS[int(d)]} for d in days]
        template = {"type": "Alarm", **common, "repeatPeriod": {"type": "string", "value": period},
                    "repeatDay": repeat_day}
        return (locale.alarm_set(when, now, days or None),
                Directive.create("Clova", "RenderTemplate", template))
    return "Done.", None


def failure(payload_type: str, locale: Locale = ENGLISH) -> str:
    return locale.set_failed(payload_type)
