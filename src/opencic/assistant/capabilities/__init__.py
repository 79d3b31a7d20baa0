"""One module per capability; this table is the only place intents meet handlers.

Each handler is a pure function ``(intent, event, device, clock) -> IntentResponse``
(see ``..turn``): no I/O, so each is unit-tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..turn import Capability, QuestionFor
from ..understanding import FALLBACK
from . import alerts, fallback, greeting, volume
from . import help as help_capability
from . import time as time_capability

CAPABILITIES: Mapping[str, Capability] = MappingProxyType(
    {
        "GetTime": time_capability.get_time,
        "GetDate": time_capability.get_date,
        "Greeting": greeting.greet,
        "Help": help_capability.help_,
        "VolumeUp": volume.volume_up,
        "VolumeDown": volume.volume_down,
        "VolumeSet": volume.volume_set,
        "Mute": volume.mute,
        "Unmute": volume.unmute,
        "SetAlarm": alerts.set_alarm,
        "SetTimer": alerts.set_timer,
        "StopAlert": alerts.stop_alert,
        "CancelAlerts": alerts.cancel_alerts,
        "ListAlerts": alerts.list_alerts,
        FALLBACK: fallback.fallback,
    }
)

# Asked before the capability runs when the request lacks something (multi-turn: the
# answer comes back as the follow-up to SpeechRecognizer.ExpectSpeech, see ..dialogue).
QUESTIONS: Mapping[str, QuestionFor] = MappingProxyType(
    {
        "VolumeSet": volume.ask_level,
        "SetAlarm": alerts.ask_alarm_time,
        "SetTimer": alerts.ask_timer_duration,
    }
)

# Answers that never change: worth synthesising at start-up so they are cache hits.
FIXED_PHRASES: tuple[str, ...] = (
    *greeting.PHRASES,
    *help_capability.PHRASES,
    *fallback.PHRASES,
    *volume.PHRASES,
    *alerts.PHRASES,
)

# Intents that act on an account's data: a guest-mode token gets Clova.ExpectLogin.
ACCOUNT_INTENTS = alerts.ACCOUNT_INTENTS

__all__ = ["ACCOUNT_INTENTS", "CAPABILITIES", "FIXED_PHRASES", "QUESTIONS"]
