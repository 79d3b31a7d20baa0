"""Help: what this assistant can do (keep in step with sentences/en.yaml)."""

from __future__ import annotations

from ...protocol.messages import Event
from ..turn import Clock, DeviceContext, IntentResponse
from ..understanding import IntentResult

HELP_SPEECH = (
    "You can ask me what time it is or what today's date is. "
    "I can also turn the volume up or down, set it to a level or a percentage, "
    "or mute and unmute the speaker."
)
HELP_DISPLAY = (
    'Try: "What time is it?", "What\'s the date today?", "Louder", "Volume down", '
    '"Set the volume to 5", "Set the volume to 40 percent", "Mute", "Unmute".'
)


def help_(
    intent: IntentResult, event: Event, device: DeviceContext, clock: Clock
) -> IntentResponse:
    return IntentResponse.say(HELP_SPEECH, HELP_DISPLAY)


PHRASES = (HELP_SPEECH,)
