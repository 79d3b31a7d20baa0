"""Volume: up, down, set, mute, unmute.

Decisions, from the contract:

* No Speak and no RenderText for a change of speaker output: B-SR-11 (DeviceControl.md,
  PlaybackController.md) says the *device* acknowledges volume/mute directives with a
  light or short sound. RenderText is not forbidden by the letter of the rule, but a
  second, server-made acknowledgement is what the rule is there to avoid, so the answer
  is the control directive alone.
* We do speak when nothing will change: the device cannot control its volume
  (B-DV-01: check ``Device.DeviceState`` ``volume.actions[]``; when it lacks the action,
  answer with a Speak instead), or it is already at the limit asked for (CIC clamps
  amounts to the device range, DeviceControl.Decrease notes, so the change would be 0).
  A device that sends no ``volume`` info object is assumed able (it answers
  ActionFailed if not, B-DV-02): simple clients often send no Device.DeviceState.
* Scale (ambiguity #25): ``Device.DeviceState.volume`` min/max when present; otherwise
  0-10 as Speaker.VolumeState documents, unless the reported volume is above 10 (the
  CIC examples send 25), in which case 0-100.
* Levels: a bare number is a level on that scale ("set the volume to 5"); a number with
  percent is mapped onto the scale ("40 percent" of 0-15 is 6); a bare number above the
  scale's maximum (up to 100) is read as percent, since people think of volume in
  percent ("volume 40" on a 0-10 speaker means 4). ``value`` is sent as a string of the
  resulting level (DeviceControl.SetValue/Increase/Decrease: ``value`` is a string).
* Increase/Decrease without an amount carry no ``value``: the device uses its own step
  (B-DV-04).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ...protocol.messages import Directive, Event
from ..turn import Clock, DeviceContext, IntentResponse, Question
from ..understanding import IntentResult

TARGET = "volume"
DEFAULT_SCALE = (0.0, 10.0)  # Speaker.VolumeState.volume, documented 0-10
WIDE_SCALE = (0.0, 100.0)

CANNOT = "Sorry, I can't change the volume on this device."
AT_MAXIMUM = "The volume is already at the maximum."
AT_MINIMUM = "The volume is already at the minimum."
NO_LEVEL = "Sorry, I didn't catch the volume level."
ASK_LEVEL = "What volume level would you like?"
LEVEL_ANSWER = "AnswerLevel"  # the answer templates in sentences/<lang>.yaml


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _round(value: float) -> float:
    # Half up, not banker's rounding: 4.5 steps is 5 to a listener.
    return float(math.floor(value + 0.5))


def format_level(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True, slots=True)
class VolumeInfo:
    """What the event's context says about the speaker."""

    minimum: float
    maximum: float
    current: float | None = None
    muted: bool | None = None
    actions: frozenset[str] | None = None  # None: the device did not say

    def supports(self, action: str) -> bool:
        return self.actions is None or action in self.actions

    @property
    def span(self) -> float:
        return self.maximum - self.minimum

    def clamp(self, level: float) -> float:
        return min(self.maximum, max(self.minimum, level))

    def level_for(self, number: float, unit: str | None) -> float:
        """A spoken level/percentage as a level on the device's scale."""
        if unit != "percent" and number > self.maximum and number <= 100:
            unit = "percent"
        if unit == "percent":
            return self.clamp(self.minimum + _round(min(number, 100.0) / 100.0 * self.span))
        return self.clamp(_round(number))

    def steps_for(self, amount: float, unit: str | None) -> float:
        """A spoken relative amount as a number of levels (at least one)."""
        if unit == "percent":
            return max(1.0, _round(min(amount, 100.0) / 100.0 * self.span))
        return max(1.0, _round(amount))


def volume_info(event: Event) -> VolumeInfo:
    state = event.context_payload("Device", "DeviceState") or {}
    info = state.get("volume")
    info = info if isinstance(info, dict) else None
    speaker = event.context_payload("Speaker", "VolumeState") or {}

    current = _number(info.get("value")) if info else None
    if current is None:
        current = _number(speaker.get("volume"))

    low = _number(info.get("min")) if info else None
    high = _number(info.get("max")) if info else None
    if low is not None and high is not None and high > low:
        scale = (low, high)
    elif current is not None and current > DEFAULT_SCALE[1]:
        scale = WIDE_SCALE
    else:
        scale = DEFAULT_SCALE

    actions: frozenset[str] | None = None
    if info is not None and isinstance(info.get("actions"), list):
        actions = frozenset(a for a in info["actions"] if isinstance(a, str))
    muted = speaker.get("muted")
    return VolumeInfo(
        scale[0],
        scale[1],
        current,
        muted if isinstance(muted, bool) else None,
        actions,
    )


def _control(name: str, value: str | None = None) -> Directive:
    payload: dict[str, Any] = {"target": TARGET}
    if value is not None:
        payload["value"] = value
    return Directive.create("DeviceControl", name, payload)


def _relative(intent: IntentResult, event: Event, up: bool) -> IntentResponse:
    info = volume_info(event)
    name = "Increase" if up else "Decrease"
    if not info.supports(name):
        return IntentResponse.say(CANNOT)
    room: float | None = None
    if info.current is not None:
        room = info.maximum - info.current if up else info.current - info.minimum
        if room <= 0:
            return IntentResponse.say(AT_MAXIMUM if up else AT_MINIMUM)
    amount = _number(intent.slot("amount"))
    if amount is None:
        return IntentResponse.act(_control(name))
    steps = info.steps_for(amount, intent.slot("unit"))
    if room is not None:
        steps = min(steps, room)
    return IntentResponse.act(_control(name, format_level(steps)))


def volume_up(
    intent: IntentResult, event: Event, device: DeviceContext, clock: Clock
) -> IntentResponse:
    return _relative(intent, event, up=True)


def volume_down(
    intent: IntentResult, event: Event, device: DeviceContext, clock: Clock
) -> IntentResponse:
    return _relative(intent, event, up=False)


def volume_set(
    intent: IntentResult, event: Event, device: DeviceContext, clock: Clock
) -> IntentResponse:
    info = volume_info(event)
    if not info.supports("SetValue"):
        return IntentResponse.say(CANNOT)
    number = _number(intent.slot("level"))
    if number is None:
        return IntentResponse.say(NO_LEVEL)
    level = info.level_for(number, intent.slot("unit"))
    return IntentResponse.act(_control("SetValue", format_level(level)))


def ask_level(intent: IntentResult, event: Event) -> Question | None:
    """"Set the volume" without a level: ask for it (multi-turn, SpeechRecognizer.
    ExpectSpeech), unless the device cannot set its volume (the capability then says so
    at once rather than after a pointless question)."""
    if intent.slot("level") is not None:
        return None
    if not volume_info(event).supports("SetValue"):
        return None
    # Measured with the bundled Whisper: a bare "five" is heard as "Bye." without the
    # hint and as "5." with it.
    return Question(ASK_LEVEL, LEVEL_ANSWER, hint="Volume level: 5. Set it to 7. 3.")


def mute(intent: IntentResult, event: Event, device: DeviceContext, clock: Clock) -> IntentResponse:
    # Sent even when VolumeState says muted already: idempotent, and the device's own
    # acknowledgement tells the user it is muted.
    return IntentResponse.act(Directive.create("PlaybackController", "Mute"))


def unmute(
    intent: IntentResult, event: Event, device: DeviceContext, clock: Clock
) -> IntentResponse:
    return IntentResponse.act(Directive.create("PlaybackController", "Unmute"))


PHRASES = (CANNOT, AT_MAXIMUM, AT_MINIMUM, NO_LEVEL, ASK_LEVEL)
