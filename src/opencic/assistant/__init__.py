"""Events in, directives out: understanding, capabilities, and the reply they make.

Sans-HTTP: the server hands an :class:`~opencic.protocol.messages.Event` and a
:class:`DeviceContext` to :meth:`Assistant.handle` and writes the :class:`Reply`.
"""

from .core import Assistant, SpeechOutput
from .reply import Reply
from .turn import Clock, DeviceContext, IntentResponse, system_clock
from .understanding import IntentRecognizer, IntentResult

__all__ = [
    "Assistant",
    "Clock",
    "DeviceContext",
    "IntentRecognizer",
    "IntentResponse",
    "IntentResult",
    "Reply",
    "SpeechOutput",
    "system_clock",
]
