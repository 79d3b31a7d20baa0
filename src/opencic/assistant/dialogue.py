"""Multi-turn dialogue: questions awaiting an answer (SpeechRecognizer.ExpectSpeech).

When a request lacks something ("set the volume" without a level) a capability's
*question function* (``capabilities.QUESTIONS``) returns a :class:`Question`; the core
asks it (Speak + RenderText + ``SpeechRecognizer.ExpectSpeech``, B-SR-05) and remembers
a :class:`PendingQuestion` here. The device's follow-up Recognize (voice or
``TextRecognizer``) carries ``speechId`` = the ``expectSpeechId`` (B-SR-06); its text is
understood with the answer templates the question expects (sentences/<lang>.yaml,
``requires_context: {expecting: <answer intent>}``), and the answer's slots complete
the original intent.

Decisions:

* One pending question per device: a new question replaces the old one, and any
  Recognize from the device that says something ends the pending one (answered or
  not): the user has moved on, and an ``expectSpeechId`` is good for one answer. A
  voice follow-up in which nobody spoke ("I didn't hear anything") leaves it pending
  until it expires.
* A follow-up whose ``speechId`` is unknown, expired, or someone else's is a fresh
  request (the question is dropped).
* dialogRequestId: the follow-up may carry the question's ID or a new one (ambiguity
  #10); the answer echoes whatever the follow-up carried (B-DI-07), so nothing here
  depends on it. It is kept only for logs.
* Memory only, bounded (``max_devices``, oldest first out) and with a TTL: the device
  waits ``timeout_ms`` for the user to start speaking, then uploads at most the audio
  cap, so an answer later than ``ttl_seconds`` is not coming. One server process holds
  the state (``workers`` is 1); durable storage is for later. Not thread-safe: used from
  the event loop only.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..protocol.ids import new_id
from ..protocol.messages import Directive
from .turn import Question
from .understanding import ANSWER_CONTEXT_KEY, IntentResult

__all__ = [
    "DialogueState",
    "PendingQuestion",
    "Question",
    "expect_speech",
]

DEFAULT_TTL_SECONDS = 60.0  # the timeout, a long utterance and the network, with room
DEFAULT_MAX_DEVICES = 10_000


@dataclass(frozen=True, slots=True)
class PendingQuestion:
    """A question asked of one device, waiting for its follow-up."""

    speech_id: str  # the ExpectSpeech.expectSpeechId
    device_id: str
    intent: str  # the intent the answer completes
    slots: Mapping[str, Any]  # its slots so far
    question: Question
    dialog_request_id: str | None
    expires_at: float  # on the state's clock

    @property
    def context(self) -> dict[str, Any]:
        """The hassil intent context under which the answer templates match."""
        return {ANSWER_CONTEXT_KEY: self.question.expecting}

    def answers(self, intent: IntentResult) -> bool:
        return intent.name == self.question.expecting

    def complete(self, answer: IntentResult) -> IntentResult:
        """The original intent with the answer's slots filled in."""
        slots = {**self.slots, **answer.slots}
        return IntentResult(self.intent, MappingProxyType(slots), answer.text, answer.lang)


def expect_speech(pending: PendingQuestion) -> Directive:
    """SpeechRecognizer.ExpectSpeech for ``pending`` (B-SR-05); the core stamps the
    event's dialogRequestId on it (B-DI-07)."""
    return Directive.create(
        "SpeechRecognizer",
        "ExpectSpeech",
        {
            "expectSpeechId": pending.speech_id,
            "explicit": pending.question.explicit,
            "timeoutInMilliseconds": pending.question.timeout_ms,
        },
    )


@dataclass
class DialogueState:
    """Pending questions, one per device, in memory, with a TTL and a size bound."""

    ttl_seconds: float = DEFAULT_TTL_SECONDS
    max_devices: int = DEFAULT_MAX_DEVICES
    clock: Callable[[], float] = time.monotonic
    _pending: OrderedDict[str, PendingQuestion] = field(default_factory=OrderedDict, repr=False)

    def __len__(self) -> int:
        return len(self._pending)

    def ask(
        self,
        device_id: str,
        intent: IntentResult,
        question: Question,
        dialog_request_id: str | None,
    ) -> PendingQuestion:
        """Remember that ``device_id`` was asked ``question`` to complete ``intent``."""
        now = self.clock()
        self._expire(now)
        pending = PendingQuestion(
            speech_id=new_id(),
            device_id=device_id,
            intent=intent.name,
            slots=MappingProxyType(dict(intent.slots)),
            question=question,
            dialog_request_id=dialog_request_id,
            expires_at=now + self.ttl_seconds,
        )
        self._pending.pop(device_id, None)
        self._pending[device_id] = pending  # newest last: expiry order is insertion order
        while len(self._pending) > self.max_devices:
            self._pending.popitem(last=False)
        return pending

    def take(self, device_id: str, speech_id: str | None) -> PendingQuestion | None:
        """End the device's pending question; it, if ``speech_id`` answers it in time."""
        pending = self._pending.pop(device_id, None)
        if pending is None or speech_id is None or pending.speech_id != speech_id:
            return None
        if self.clock() >= pending.expires_at:
            return None
        return pending

    def peek(self, device_id: str) -> PendingQuestion | None:
        """The device's live pending question, without ending it."""
        pending = self._pending.get(device_id)
        if pending is not None and self.clock() >= pending.expires_at:
            return None
        return pending

    def _expire(self, now: float) -> None:
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if oldest.expires_at > now:
                break
            self._pending.popitem(last=False)
