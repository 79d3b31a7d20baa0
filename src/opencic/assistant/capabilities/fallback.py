"""Fallback: nothing matched. Speech is fixed (so its audio is cached), display echoes."""

from __future__ import annotations

from ...protocol.messages import Event
from ..locales import locale_for
from ..turn import Clock, DeviceContext, IntentResponse
from ..understanding import IntentResult

NOT_UNDERSTOOD = "Sorry, I didn't understand that. You can say help to hear what I can do."
NOTHING_HEARD = "Sorry, I didn't catch that. You can say help to hear what I can do."
MAX_ECHO = 80  # characters of the user's text shown back


def fallback(
    intent: IntentResult, event: Event, device: DeviceContext, clock: Clock
) -> IntentResponse:
    text = " ".join(intent.text.split())
    if not text:
        return IntentResponse.say(NOTHING_HEARD)
    if len(text) > MAX_ECHO:
        text = text[: MAX_ECHO - 1].rstrip() + "…"
    display = locale_for(intent.lang).not_understood(text)
    return IntentResponse.say(NOT_UNDERSTOOD, display)


PHRASES = (NOT_UNDERSTOOD, NOTHING_HEARD)
