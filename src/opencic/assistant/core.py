"""The assistant: one event in, one :class:`Reply` out. No HTTP here.

Routing is by the event's ``Namespace.Name`` in a single table (``Assistant._routes``);
an event nobody handles gets an empty reply, which the server answers with 204
(B-EV-03). A text request goes: understand (hassil templates) -> capability (pure
function) -> render (TTS to MP3, directives stamped with the event's dialogRequestId).
A request that lacks something is answered with a question and
SpeechRecognizer.ExpectSpeech; the follow-up (``speechId``) completes it (``dialogue``).
Each request is understood and answered in its language (``languages``: Recognize's
``lang``, or the script of typed text), with that language's templates, phrases
(``locales``) and voice (``voices``; English is the default).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..protocol.errors import BadRequest
from ..protocol.messages import Directive, Event
from ..state.base import Store
from .capabilities import ACCOUNT_INTENTS, CAPABILITIES, FIXED_PHRASES, QUESTIONS
from .device_events import DeviceEvents
from .dialogue import DialogueState, PendingQuestion, expect_speech
from .languages import DEFAULT_LANG, DeviceLanguages, Understanding, request_language
from .locales import locale_for
from .reply import Reply, render_text, speak, with_dialog_request_id
from .turn import Capability, Clock, DeviceContext, IntentResponse, QuestionFor, system_clock
from .understanding import FALLBACK, IntentRecognizer, IntentResult
from .voice import DIDNT_HEAR, SpeechInput, VoiceTurn, recognize_language

__all__ = ["Assistant", "DeviceContext", "SpeechOutput"]

_LOGGER = logging.getLogger(__name__)

MAX_SPEAK_TEXT = 1000  # characters; SpeechSynthesizer.Request text beyond this is refused
SOMETHING_WENT_WRONG = "Sorry, something went wrong. Please try again."
NO_VOICE = "Sorry, I can't speak that language."
SIGN_IN_FIRST = "To use alarms and timers, please sign in to your account first."

EventHandler = Callable[[Event, DeviceContext], Awaitable[Reply]]


class SpeechOutput(Protocol):
    """What the assistant needs from speech/: MP3 bytes for a text, without blocking."""

    async def speak_mp3(self, text: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class AnswerPreview:
    """:meth:`Assistant.preview_answer`: the words being rendered (None: nothing to say,
    or no voice), and whether the request is complete: understood, with nothing to ask."""

    words: str | None
    complete: bool


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
        store: Store | None = None,
        voices: Mapping[str, SpeechOutput] | None = None,
    ) -> None:
        self.synthesizer = synthesizer
        # One voice per language we can speak; ``synthesizer`` is the English one.
        self.voices: dict[str, SpeechOutput] = {**(voices or {}), DEFAULT_LANG: synthesizer}
        self.clock = clock
        self.intents = intents if intents is not None else IntentRecognizer()
        self.understanding = Understanding(self.intents)
        self.device_languages = DeviceLanguages()
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
        # Events about the device's own state (alerts, settings) need the store.
        self.device_events = (DeviceEvents(store, self.render, clock, self.device_languages.get)
                              if store is not None else None)
        if self.device_events is not None:
            self._routes.update(self.device_events.routes)

    # ------------------------------------------------------------------ public API

    @property
    def handled_events(self) -> frozenset[str]:
        return frozenset(self._routes)

    async def handle(self, event: Event, device: DeviceContext) -> Reply:
        handler = self._routes.get(event.qualified_name)
        if handler is None:
            return Reply()
        return await handler(event, device)

    async def observe(self, event: Event, device: DeviceContext) -> None:
        """Every event, before it is handled: keep the device's latest context."""
        if self.device_events is not None:
            await self.device_events.remember_context(event, device)

    async def finish(self, response: IntentResponse, event: Event, device: DeviceContext) -> Reply:
        """Store what the answer commits to (its effects), then render it."""
        lang = self.reply_language(event, device)
        if response.effects:
            if self.device_events is None:
                return await self.render(IntentResponse.say(SOMETHING_WENT_WRONG),
                                         event.header.dialog_request_id, lang)
            await self.device_events.apply(response.effects, event, device)
        return await self.render(response, event.header.dialog_request_id, lang)

    def reply_language(self, event: Event, device: DeviceContext) -> str:
        """A voice request's own ``lang``, else the language the device last used."""
        if event.header.namespace == "SpeechRecognizer":
            lang = event.payload.get("lang")
            if isinstance(lang, str) and lang.split("-")[0].lower() in self.understanding.languages:
                return lang.split("-")[0].lower()
        return self.device_languages.get(device.device_id)

    def start_voice(self, event: Event, device: DeviceContext) -> VoiceTurn:
        """A :class:`VoiceTurn` for a ``SpeechRecognizer.Recognize`` whose audio is about
        to stream. Raises :class:`BadRequest` for a format or lang we cannot take."""
        if self.speech_input is None:
            raise BadRequest("speech recognition is not enabled on this server; use "
                             "TextRecognizer.Recognize")
        engines = self.speech_input
        try:
            language = recognize_language(event.payload, engines.recognizer.languages)
        except BadRequest:
            # A language this server knows but cannot serve says why (e.g. "lang 'ko'
            # needs the multilingual speech model ..."); anything else keeps its message.
            explain = getattr(engines.recognizer, "unavailable_reason", None)
            lang = event.payload.get("lang")
            reason = explain(lang.split("-")[0].lower()) if explain and isinstance(lang, str) else None
            if reason is None:
                raise
            raise BadRequest(reason) from None
        return VoiceTurn(self, engines, event, device, language)

    def understand(self, text: str, pending: PendingQuestion | None = None,
                   lang: str = DEFAULT_LANG) -> IntentResult:
        """The intent of ``text`` in ``lang``; with ``pending``, an answer to it completes
        its intent."""
        intents = self.understanding.recognizer(lang)
        if pending is None:
            return intents.recognize(text)
        intent = intents.recognize(text, pending.context)
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
        lang = request_language(event.header.namespace, event.payload, text,
                                self.understanding.languages)
        self.device_languages.set(device.device_id, lang)
        intent = self.understand(text, pending, lang)
        _LOGGER.debug(
            "understood",
            extra={
                "intent": intent.name,
                "lang": intent.lang,
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

    def preview_answer(self, text: str, event: Event, device: DeviceContext) -> AnswerPreview:
        """What :meth:`answer` would most likely do with ``text``, and its speech started
        rendering in the background.

        For a transcript that is probable but not final yet (a voice request's
        speculative decode at a pause): when the request does end there, :meth:`render`
        finds that MP3 cached or in flight instead of starting from nothing, and a
        complete request may end the capture early. It has none of :meth:`answer`'s
        effects (the pending question stays, the device's language is not changed,
        nothing is stored) and is only a guess: a clock that ticks over, or a different
        final text, just makes it a wasted render.
        """
        pending = self.dialogue.peek(device.device_id)
        speech_id = _speech_id(event.payload)
        if pending is not None and (speech_id is None or pending.speech_id != speech_id):
            pending = None  # answer() would take it as a fresh request (B-SR-06)
        lang = request_language(event.header.namespace, event.payload, text,
                                self.understanding.languages)
        intent = self.understand(text, pending, lang)
        ask = self.questions.get(intent.name)
        question = ask(intent, event) if ask is not None else None
        # Capabilities are pure: their effects are returned, applied only by finish().
        speech = (question.speech if question is not None
                  else self.respond(intent, event, device).speech)
        complete = intent.name != FALLBACK and question is None
        locale = locale_for(self.reply_language(event, device))
        voice = self.voices.get(locale.lang)
        prefetch = getattr(voice, "prefetch", None)
        if not speech or prefetch is None:
            return AnswerPreview(None, complete)
        words = locale.say(speech)
        prefetch(words)
        return AnswerPreview(words, complete)

    def respond(self, intent: IntentResult, event: Event, device: DeviceContext) -> IntentResponse:
        """Run the capability for ``intent``; a failing capability answers with an apology.

        A bug in one capability should not leave the user in silence (a 500 plays
        nothing), so it is logged with its trace and turned into a spoken apology.
        """
        if device.guest and intent.name in ACCOUNT_INTENTS:
            # auth.md §4, B-OT-04: account features ask a guest to log in; the request
            # is not resumed afterwards (the user repeats it).
            login = Directive.create("Clova", "ExpectLogin")
            return IntentResponse(SIGN_IN_FIRST, SIGN_IN_FIRST, (login,))
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

    async def render(self, response: IntentResponse, dialog_request_id: str | None,
                     lang: str = DEFAULT_LANG) -> Reply:
        """Speak (+ MP3 attachment), then RenderText, then the other directives.

        The order of the CIC response example; every directive carries exactly
        ``dialog_request_id`` (B-DI-07). Fixed phrases are said in ``lang``
        (``Locale.say``); without a voice for ``lang`` the answer is shown, not spoken
        (an English voice reading Korean text would be noise).
        """
        reply = Reply()
        locale = locale_for(lang)
        if response.speech:
            voice = self.voices.get(locale.lang)
            if voice is not None:
                mp3 = await voice.speak_mp3(locale.say(response.speech))
                directive, attachment = speak(
                    mp3, dialog_request_id=dialog_request_id, tts_lang=locale.lang
                )
                reply.add(directive, attachment)
            else:
                _LOGGER.warning("no voice for the answer's language", extra={"lang": locale.lang})
        if response.display:
            reply.add(render_text(locale.say(response.display),
                                  dialog_request_id=dialog_request_id))
        for directive in response.directives:
            reply.add(with_dialog_request_id(directive, dialog_request_id))
        return reply

    def fixed_phrases(self, lang: str = DEFAULT_LANG) -> tuple[str, ...]:
        """Answers that never change, in ``lang``, to pre-render at start-up."""
        locale = locale_for(lang)
        phrases = (*FIXED_PHRASES, SOMETHING_WENT_WRONG, DIDNT_HEAR, SIGN_IN_FIRST)
        extra = (NO_VOICE,) if lang == DEFAULT_LANG else ()
        return (*(locale.say(p) for p in phrases), *extra)

    # ------------------------------------------------------------------ handlers

    async def _on_text_recognize(self, event: Event, device: DeviceContext) -> Reply:
        response = self.answer(_text(event.payload), event, device)
        return await self.finish(response, event, device)

    async def _on_speech_request(self, event: Event, device: DeviceContext) -> Reply:
        """SpeechSynthesizer.Request: speak the given text; the answer is one Speak.

        The event normally has no dialogRequestId (interfaces.yaml: not_set); if the
        client put one there it is echoed. The text is spoken by the voice of ``lang``
        (``ttsLang`` says which); a language without a voice gets a short English
        apology rather than English phonemes read over foreign text. Empty text answers
        nothing (204).
        """
        text = " ".join(_text(event.payload).split())
        if not text:
            return Reply()
        if len(text) > MAX_SPEAK_TEXT:
            raise BadRequest(f"payload.text is longer than {MAX_SPEAK_TEXT} characters")
        lang = event.payload.get("lang")
        lang = lang.split("-")[0].lower() if isinstance(lang, str) and lang else DEFAULT_LANG
        voice = self.voices.get(lang)
        if voice is None:
            lang, voice, text = DEFAULT_LANG, self.synthesizer, NO_VOICE
        reply = Reply()
        mp3 = await voice.speak_mp3(text)
        directive, attachment = speak(
            mp3, dialog_request_id=event.header.dialog_request_id, tts_lang=lang
        )
        reply.add(directive, attachment)
        return reply


def _text(payload: dict[str, Any]) -> str:
    text = payload.get("text")
    return text if isinstance(text, str) else ""


def _speech_id(payload: dict[str, Any]) -> str | None:
    speech_id = payload.get("speechId")
    return speech_id if isinstance(speech_id, str) and speech_id else None
