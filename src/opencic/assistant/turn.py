"""The types a capability sees and returns: one dialogue turn, without any I/O.

A capability is a plain function ``(intent, event, device, clock) -> IntentResponse``.
It reads what it needs from the event's context objects and says what to answer; the
assistant core turns that into directives (and TTS audio). Kept apart from ``core`` so
capabilities never import the machinery that calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..protocol.messages import Directive, Event
    from .understanding import IntentResult

# Returns the current time, timezone-aware; its zone is the server's local zone.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now().astimezone()


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """Who is asking: what the server knows about the device beyond the event itself."""

    device_id: str
    user_agent: str | None = None
    user_id: str | None = None  # the account that owns the device (None: a dev token)
    guest: bool = False  # a guest-mode token (auth.md §4): account features need login


@dataclass(frozen=True, slots=True)
class IntentResponse:
    """What to answer: words to speak, text to show, and any other directives.

    ``speech`` becomes SpeechSynthesizer.Speak (with an MP3 attachment), ``display``
    Clova.RenderText; either may be None. ``directives`` follow them in order and carry
    no dialogRequestId yet: the core stamps the event's (B-DI-07).
    """

    speech: str | None = None
    display: str | None = None
    directives: tuple[Directive, ...] = field(default_factory=tuple)
    # State changes the core applies (to the store) before the answer leaves, e.g.
    # capabilities.alerts.SaveAlert: what is acknowledged is stored (issue 3).
    effects: tuple[Any, ...] = field(default_factory=tuple)

    @classmethod
    def say(cls, speech: str, display: str | None = None) -> IntentResponse:
        """Speak ``speech`` and show ``display`` (the same words unless given)."""
        return cls(speech, display if display is not None else speech)

    @classmethod
    def act(cls, *directives: Directive) -> IntentResponse:
        """Only directives: no Speak, no RenderText (e.g. volume changes, B-SR-11)."""
        return cls(None, None, tuple(directives))

    @property
    def is_empty(self) -> bool:
        return self.speech is None and self.display is None and not self.directives


# ExpectSpeech.timeoutInMilliseconds: how long the device waits for the user to speak.
DEFAULT_ANSWER_TIMEOUT_MS = 8000


@dataclass(frozen=True, slots=True)
class Question:
    """A request lacks something: what to ask, and the answer it expects.

    Returned by a capability's question function (``capabilities.QUESTIONS``); the core
    speaks ``speech`` with SpeechRecognizer.ExpectSpeech (``explicit``,
    ``timeout_ms``). ``expecting`` names the answer intent (e.g. ``AnswerLevel``) whose
    templates the follow-up is matched against; its slots complete the original intent.
    """

    speech: str
    expecting: str
    explicit: bool = True
    timeout_ms: int = DEFAULT_ANSWER_TIMEOUT_MS
    # What answers sound like, for the recogniser of a spoken follow-up (speech/asr.py
    # ``hint``): short answers are hard to hear without context.
    hint: str | None = None


class Capability(Protocol):
    def __call__(
        self, intent: IntentResult, event: Event, device: DeviceContext, clock: Clock
    ) -> IntentResponse: ...


class QuestionFor(Protocol):
    """Before a capability runs: the :class:`Question` to ask first, or None."""

    def __call__(self, intent: IntentResult, event: Event) -> Question | None: ...
