"""The assistant: one event in, one :class:`Reply` out. No HTTP here.

Routing is by the event's ``Namespace.Name`` in a single table (``Assistant._routes``);
an event nobody handles gets an empty reply, which the server answers with 204
(B-EV-03). A text request goes: understand (hassil templates) -> capability (pure
function) -> render (TTS to MP3, directives stamped with the event's dialogRequestId).
A request that lacks something is answered with a question and
SpeechRecognizer.ExpectSpeech; the follow-up (``speechId``) completes it (``dialogue``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from ..protocol.errors import BadRequest
from ..protocol.messages import Event
from .capabilities import CAPABILITIES, FIXED_PHRASES, QUESTIONS
from .dialogue import DialogueState, PendingQuestion, expect_speech
from .reply import Reply, render_text, speak, with_dialog_request_id
from .turn import Capability, Clock, DeviceContext, IntentResponse, QuestionFor, system_clock
from .understanding import FALLBACK, IntentRecognizer, IntentResult
from .voice import DIDNT_HEAR, SpeechInput, VoiceTurn, recognize_language

__all__ = ["Assistant", "DeviceContext", "SpeechOutput"]

_LOGGER = logging.getLogger(__name__)

TTS_LANG = "en"  # the only voice we ship speaks English
MAX_SPEAK_TEXT = 1000  # characters; SpeechSynthesizer.Request text beyond this is refused
SOMETHING_WENT_WRONG = "Sorry, something went wrong. Please try again."
ENGLISH_ONLY = "Sorry, I can only speak English."

EventHandler = Callable[[Event, DeviceContext], Awaitable[Reply]]


class SpeechOutput(Protocol):
    """What the assistant needs from speech/: MP3 bytes for a text, without blocking."""

    async def speak_mp3(self, text: str) -> bytes: ...


class Assistant:
    def __init__(
        self,
        synthesizer: SpeechOutput,
        *,
        clock: Clock = system_clock,
        intents: IntentRecognizer | None = None,
        capabilities: Mapping[str, Capability] | None = None,
        speech_input: SpeechInput | None = None,
        questions: Mapping[str, QuestionFor] | None = None,
        dialogue: DialogueState | None = None,
    ) -> None:
        self.synthesizer = synthesizer
        self.clock = clock
        self.intents = intents if intents is not None else IntentRecognizer()
        self.capabilities: Mapping[str, Capability] = (
            capabilities if capabilities is not None else CAPABILITIES
        )
        self.questions: Mapping[str, QuestionFor] = (
            questions if questions is not None else QUESTIONS
        )
        # Questions awaiting their follow-up (SpeechRecognizer.ExpectSpeech), per device.
        self.dialogue = dialogue if dialogue is not None else DialogueState()
        # Voice requests stream: they go through start_voice(), not handle().
        self.speech_input = speech_input
        self._routes: dict[str, EventHandler] = {
            "TextRecognizer.Recognize": self._on_text_recognize,
            "SpeechSynthesizer.Request": self._on_speech_request,
        }

    # ------------------------------------------------------------------ public API

    @property
    def handled_events(self) -> frozenset[str]:
        return frozenset(self._routes)

    async def handle(self, event: Event, device: DeviceContext) -> Reply:
        handler = self._routes.get(event.qualified_name)
        if handler is None:
            return Reply()
        return await handler(event, device)

    def start_voice(self, event: Event, device: DeviceContext) -> VoiceTurn:
        """A :class:`VoiceTurn` for a ``SpeechRecognizer.Recognize`` whose audio is about
        to stream. Raises :class:`BadRequest` for a format or lang we cannot take."""
        if self.speech_input is None:
            raise BadRequest("speech recognition is not enabled on this server; use "
                             "TextRecognizer.Recognize")
        engines = self.speech_input
        language = recognize_language(event.payload, engines.recognizer.languages)
        return VoiceTurn(self, engines, event, device, language)

    def understand(self, text: str, pending: PendingQuestion | None = None) -> IntentResult:
        """The intent of ``text``; with ``pending``, an answer to it completes its intent."""
        if pending is None:
            return self.intents.recognize(text)
        intent = self.intents.recognize(text, pending.context)
        return pending.complete(intent) if pending.answers(intent) else intent

    def answer(self, text: str, event: Event, device: DeviceContext) -> IntentResponse:
        """What to answer to a Recognize (text or voice) saying ``text``.

        A follow-up carries ``speechId`` (B-SR-06): when it is the device's pending
        question, ``text`` may be just the answer ("five"). An unknown or expired
        ``speechId`` is a fresh request. Any Recognize ends the pending question. When
        the intent lacks something, the answer is a question + ExpectSpeech (B-SR-05).
        """
        dialog = event.header.dialog_request_id
        pending = self.dialogue.take(device.device_id, _speech_id(event.payload))
        intent = self.understand(text, pending)
        _LOGGER.debug(
            "understood",
            extra={
                "intent": intent.name,
                "slots": dict(intent.slots),
                "device": device.device_id,
                "dialogRequestId": dialog,
                "speechId": pending.speech_id if pending is not None else None,
            },
        )
        ask = self.questions.get(intent.name)
        question = ask(intent, event) if ask is not None else None
        if question is None:
            return self.respond(intent, event, device)
        asked = self.dialogue.ask(device.device_id, intent, question, dialog)
        return IntentResponse(question.speech, question.speech, (expect_speech(asked),))

    def respond(self, intent: IntentResult, event: Event, device: DeviceContext) -> IntentResponse:
        """Run the capability for ``intent``; a failing capability answers with an apology.

        A bug in one capability should not leave the user in silence (a 500 plays
        nothing), so it is logged with its trace and turned into a spoken apology.
        """
        capability = self.capabilities.get(intent.name) or self.capabilities[FALLBACK]
        try:
            return capability(intent, event, device, self.clock)
        except Exception:
            _LOGGER.exception(
                "capability failed",
                extra={
                    "intent": intent.name,
                    "device": device.device_id,
                    "dialogRequestId": event.header.dialog_request_id,
                },
            )
            return IntentResponse.say(SOMETHING_WENT_WRONG)

    async def render(self, response: IntentResponse, dialog_request_id: str | None) -> Reply:
        """Speak (+ MP3 attachment), then RenderText, then the other directives.

        The order of the CIC response example; every directive carries exactly
        ``dialog_request_id`` (B-DI-07).
        """
        reply = Reply()
        if response.speech:
            mp3 = await self.synthesizer.speak_mp3(response.speech)
            directive, attachment = speak(
                mp3, dialog_request_id=dialog_request_id, tts_lang=TTS_LANG
            )
            reply.add(directive, attachment)
        if response.display:
            reply.add(render_text(response.display, dialog_request_id=dialog_request_id))
        for directive in response.directives:
            reply.add(with_dialog_request_id(directive, dialog_request_id))
        return reply

    def fixed_phrases(self) -> tuple[str, ...]:
        """Answers that never change, to pre-render at start-up."""
        return (*FIXED_PHRASES, SOMETHING_WENT_WRONG, ENGLISH_ONLY, DIDNT_HEAR)

    # ------------------------------------------------------------------ handlers

    async def _on_text_recognize(self, event: Event, device: DeviceContext) -> Reply:
        response = self.answer(_text(event.payload), event, device)
        return await self.render(response, event.header.dialog_request_id)

    async def _on_speech_request(self, event: Event, device: DeviceContext) -> Reply:
        """SpeechSynthesizer.Request: speak the given text; the answer is one Speak.

        The event normally has no dialogRequestId (interfaces.yaml: not_set); if the
        client put one there it is echoed. Only English can be spoken, so a request in
        another language gets a short English apology rather than English phonemes read
        over foreign text. Empty text answers nothing (204).
        """
        text = " ".join(_text(event.payload).split())
        if not text:
            return Reply()
        if len(text) > MAX_SPEAK_TEXT:
            raise BadRequest(f"payload.text is longer than {MAX_SPEAK_TEXT} characters")
        lang = event.payload.get("lang")
        if isinstance(lang, str) and lang and lang.lower() != TTS_LANG:
            text = ENGLISH_ONLY
        reply = Reply()
        mp3 = await self.synthesizer.speak_mp3(text)
        directive, attachment = speak(
            mp3, dialog_request_id=event.header.dialog_request_id, tts_lang=TTS_LANG
        )
        reply.add(directive, attachment)
        return reply


def _text(payload: dict[str, Any]) -> str:
    text = payload.get("text")
    return text if isinstance(text, str) else ""


def _speech_id(payload: dict[str, Any]) -> str | None:
    speech_id = payload.get("speechId")
    return speech_id if isinstance(speech_id, str) and speech_id else None
