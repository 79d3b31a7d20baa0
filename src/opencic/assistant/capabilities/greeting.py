"""Greeting: answer hello in kind, with the part of day at the device's local time."""

from __future__ import annotations

from ...protocol.messages import Event
from ..turn import Clock, DeviceContext, IntentResponse
from ..understanding import IntentResult
from .time import device_now

OFFER = "How can I help you?"


def part_of_day(hour: int) -> str:
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 18:
        return "afternoon"
    return "evening"


def greet(
    intent: IntentResult, event: Event, device: DeviceContext, clock: Clock
) -> IntentResponse:
    said = intent.slot("part_of_day")
    kind = intent.slot("kind")
    if said == "night":
        return IntentResponse.say("Good night! Sleep well.")
    if kind == "how_are_you":
        return IntentResponse.say(f"I'm doing well, thanks for asking. {OFFER}")
    if said in ("morning", "afternoon", "evening"):
        # Answer with the real part of day: "good morning" at 9 PM gets "Good evening".
        actual = part_of_day(device_now(event, clock).hour)
        return IntentResponse.say(f"Good {actual}! {OFFER}")
    return IntentResponse.say(f"Hello! {OFFER}")


PHRASES = (
    f"Hello! {OFFER}",
    f"Good morning! {OFFER}",
    f"Good afternoon! {OFFER}",
    f"Good evening! {OFFER}",
)
