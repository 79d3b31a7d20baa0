"""GetTime and GetDate, in the device's local time.

The device's zone comes from the UTC offset of ``Device.DeviceState.localTime``
(context.yaml: ISO 8601 with offset). Only the offset is used, applied to our own clock:
a device clock can be wrong or the event queued, but its offset says where the user is.
Without it we answer in the server's local time (the clock's zone).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ...protocol.messages import Event
from ..turn import Clock, DeviceContext, IntentResponse
from ..understanding import IntentResult


def device_offset(event: Event) -> timedelta | None:
    """UTC offset of the device's ``localTime``, or None when absent or unusable."""
    state = event.context_payload("Device", "DeviceState")
    raw = state.get("localTime") if state else None
    if not isinstance(raw, str):
        return None
    try:
        local = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    offset = local.utcoffset()
    # Real offsets lie within ±14 h; anything else is garbage we should not repeat aloud.
    if offset is None or abs(offset) > timedelta(hours=14):
        return None
    return offset


def device_now(event: Event, clock: Clock) -> datetime:
    now = clock()
    if now.tzinfo is None:  # a naive clock means server local time
        now = now.astimezone()
    offset = device_offset(event)
    return now.astimezone(timezone(offset)) if offset is not None else now


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def format_time(moment: datetime) -> tuple[str, str]:
    """(speech, display) for a time: "It's 11 42 PM." / "It's 11:42 PM."

    The speech form spells minutes the way people say them, because the voice reads
    "12:05" as "twelve zero five" and "7:00" as "seven zero zero".
    """
    hour = moment.hour % 12 or 12
    meridiem = "AM" if moment.hour < 12 else "PM"
    minute = moment.minute
    display = f"It's {hour}:{minute:02d} {meridiem}."
    if minute == 0:
        spoken = f"{hour} {meridiem}"
    elif minute < 10:
        spoken = f"{hour} oh {minute} {meridiem}"
    else:
        spoken = f"{hour} {minute} {meridiem}"
    return f"It's {spoken}.", display


def format_date(moment: datetime) -> tuple[str, str]:
    """(speech, display): "Today is Monday, November 23rd, 2026." / "... November 23, 2026." """
    weekday = moment.strftime("%A")
    month = moment.strftime("%B")
    display = f"Today is {weekday}, {month} {moment.day}, {moment.year}."
    speech = f"Today is {weekday}, {month} {_ordinal(moment.day)}, {moment.year}."
    return speech, display


def get_time(
    intent: IntentResult, event: Event, device: DeviceContext, clock: Clock
) -> IntentResponse:
    speech, display = format_time(device_now(event, clock))
    return IntentResponse.say(speech, display)


def get_date(
    intent: IntentResult, event: Event, device: DeviceContext, clock: Clock
) -> IntentResponse:
    speech, display = format_date(device_now(event, clock))
    return IntentResponse.say(speech, display)
