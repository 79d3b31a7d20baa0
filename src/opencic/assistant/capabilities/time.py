"""GetTime and GetDate, in the device's local time and the request's language.

The device's zone comes from the UTC offset of ``Device.DeviceState.localTime``
(context.yaml: ISO 8601 with offset). Only the offset is used, applied to our own clock:
a device clock can be wrong or the event queued, but its offset says where the user is.
Without it we answer in the server's local time (the clock's zone).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ...protocol.messages import Event
from ..locales import locale_for
from ..locales.en import format_date, format_time
from ..turn import Clock, DeviceContext, IntentResponse
from ..understanding import IntentResult

__all__ = ["device_now", "device_offset", "format_date", "format_time", "get_date", "get_time"]


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


def get_time(
    intent: IntentResult, event: Event, device: DeviceContext, clock: Clock
) -> IntentResponse:
    speech, display = locale_for(intent.lang).clock(device_now(event, clock))
    return IntentResponse.say(speech, display)


def get_date(
    intent: IntentResult, event: Event, device: DeviceContext, clock: Clock
) -> IntentResponse:
    speech, display = locale_for(intent.lang).date(device_now(event, clock))
    return IntentResponse.say(speech, display)
