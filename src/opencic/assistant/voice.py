"""Voice requests: ``SpeechRecognizer.Recognize`` with streamed audio, one turn at a time.

A :class:`VoiceTurn` is fed the request's audio as it arrives (the server never buffers
the body first) and says when the device must stop capturing; then it finishes the
recognition and answers along the same path as a text request (understand ->
capability -> Speak + RenderText ...). No HTTP here: the server drives it::

    turn = assistant.start_voice(event, device)       # validates format / lang (400)
    turn.interim = push                                # KeepRecording, ShowRecognizedText
    for chunk in audio:                                # AudioChunk(data, part)
        if turn.feed(chunk.data, chunk.part):          # end of speech, just now
            push(turn.stop_capture())                  # on the downchannel (B-SR-01)
    turn.end_of_audio()                                # the upload is complete
    reply = await turn.reply()

Engines: :class:`SpeechInput` holds the shared models (Silero VAD for end of speech,
Whisper for recognition, behind the interfaces of :mod:`opencic.speech`). Each turn has
its own :class:`~opencic.speech.vad.EndOfSpeechDetector` and recognition session; both
are fed every part before end of speech. The detector runs on the event loop (~1 ms
per 200 ms part); the recognizer's ``feed`` only buffers, and its decode
(``afinish``) runs on the recognizer's own threads, so the loop keeps reading uploads
and pushing to downchannels meanwhile. The answer is prepared as soon as end of speech
is known, while the device may still be sending; the server sends it once the upload
is complete (B-AU-03).

At a 200 ms pause the final decode starts speculatively; when its guess is in, the
answer's speech starts rendering (:meth:`Assistant.preview_answer`, no effects), and if
the guess is a complete request (understood, nothing to ask) the capture ends once the
pause reaches ``early_endpoint_ms`` rather than the whole silence rule. A request that
would ask a question, or is not understood, keeps the whole rule to go on.

Interim directives go to ``turn.interim`` (the server pushes them on the device's
downchannel) while the device is still capturing:

- ``SpeechRecognizer.ShowRecognizedText`` — partial results, off by default (B-SR-03: the
  contract enables them only "by arrangement", so it is the ``partial_results`` server
  setting, not something a device asks for). A
  :class:`~opencic.speech.partials.PartialScheduler` decides when to ask the recognizer
  for one (at most one in flight, about once per second of new speech for Whisper,
  never near the end of speech) and drops anything that comes after StopCapture.
- ``SpeechRecognizer.KeepRecording`` — "recognition is still running, keep capturing"
  (B-SR-04): sent when speech has started and has gone on for ``keep_recording_ms``
  without an end, then again every ``keep_recording_ms`` while it goes on, so a device
  with its own recording timeout does not cut a long request short. Not before speech
  starts: then nothing is being recognised, and the no-speech timeout answers.

The contract leaves KeepRecording's channel unstated; it must reach the device while it
is still recording (before StopCapture, per the Recognize's expected reply), and the
response only comes once the upload is complete (B-AU-03), so it goes on the downchannel
like StopCapture and ShowRecognizedText, with the Recognize's dialogRequestId (B-DC-08).

Rules implemented: B-AU-01 (format, 16-bit samples), B-AU-05 (audio after StopCapture
is not processed), B-SR-01 (StopCapture carries the Recognize's dialogRequestId),
B-SR-03 (partial results), B-SR-04 (KeepRecording), B-DI-07 (every directive of the
answer carries the dialogRequestId too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol.errors import BadRequest
from ..protocol.messages import Directive, Event
from ..speech.audio import CAPTURE_FORMAT, SAMPLE_WIDTH, bytes_to_ms, ms_to_bytes
from ..speech.partials import PartialScheduler
from ..speech.vad import NoSpeech, SpeechEnded, VadEvent
from .initiator import read_initiator
from .reply import Reply
from .speech_input import SpeechInput
from .turn import DeviceContext, IntentResponse

if TYPE_CHECKING:
    from ..speech.asr import RecognitionSession, Transcript
    from .core import Assistant

__all__ = ["DIDNT_HEAR", "InterimSink", "SpeechInput", "VoiceTimings", "VoiceTurn"]

_LOGGER = logging.getLogger("opencic.voice")

DIDNT_HEAR = "Sorry, I didn't hear anything."
DEFAULT_LANG = "en"  # ambiguity #24: a Recognize without lang falls back to English
# A pause this long starts a speculative final decode (the 600 ms rule fires later).
SPECULATE_AFTER_MS = 200.0
# One VAD window (32 ms) and a bit: "no voiced audio after the guess" within this.
VAD_SLACK_MS = 40.0

# Where a turn's interim directives go (the server: the device's downchannel).
InterimSink = Callable[[Directive], None]


@dataclass(slots=True)
class VoiceTimings:
    """What the log line of a voice request reports (wall times: ``time.perf_counter``).

    Audio times are milliseconds from the start of the request's audio; ``*_after_ms``
    are wall-clock milliseconds after the part that revealed the end of speech arrived.
    """

    started: float = field(default_factory=time.perf_counter)
    audio_ms: float = 0.0  # audio processed (up to StopCapture)
    ignored_ms: float = 0.0  # audio received after StopCapture (B-AU-05)
    speech_start_ms: float | None = None
    speech_end_ms: float | None = None  # end of the last voiced window
    endpoint_ms: float | None = None  # where the silence rule fired
    detected_at: float | None = None  # wall time the end of speech was known
    stop_capture_at: float | None = None
    recognized_at: float | None = None
    reply_ready_at: float | None = None
    answer_at: float | None = None
    decode_ms: float | None = None
    speculative: bool = False  # the final transcript came from a decode begun at a pause
    prefetched: bool = False  # the speculative transcript's answer speech was started early
    early_end: bool = False  # ended at early_endpoint_ms: the guess was a complete request
    keep_recording: int = 0  # KeepRecording directives sent
    partial_wall_ms: float = 0.0  # wall time of the partial decodes, all together

    def after(self, moment: float | None) -> float | None:
        if moment is None or self.detected_at is None:
            return None
        return round((moment - self.detected_at) * 1000.0, 1)


class VoiceTurn:
    """One ``SpeechRecognizer.Recognize`` request: audio in, StopCapture, then a Reply.

    Made by :meth:`Assistant.start_voice`; not thread-safe (one request, one task).
    """

    def __init__(
        self,
        assistant: Assistant,
        engines: SpeechInput,
        event: Event,
        device: DeviceContext,
        language: str,
    ) -> None:
        self.assistant = assistant
        self.event = event
        self.device = device
        self.language = language
        self.dialog_request_id = event.header.dialog_request_id
        self._max_bytes = ms_to_bytes(engines.max_audio_seconds * 1000.0)
        # B-AU-04: the pre-roll and the wake word are not recognised; press-and-hold
        # ends by release, not by silence.
        self.initiator = read_initiator(event.payload, max_samples=self._max_bytes // SAMPLE_WIDTH)
        self._skip = self.initiator.skip_bytes
        self._detector = engines.detector(endpoint_on_silence=self.initiator.endpoint_on_silence)
        self._session: RecognitionSession = engines.recognizer.start(
            language, hint=_answer_hint(assistant, event, device, language))
        self._bytes = 0  # every audio byte received, before and after StopCapture
        self._part = 0  # index of the audio part being received
        self._part_bytes = 0
        self._parts = 0
        self._stopped = False  # end of speech reached: later audio is not processed
        self._outcome: VadEvent | None = None
        self._answer: asyncio.Task[Reply] | None = None
        self.transcript: Transcript | None = None
        self.timings = VoiceTimings()
        self._engines = engines
        # Interim directives (KeepRecording, ShowRecognizedText) go here; the server sets
        # it to a push on the device's downchannel. None: they are not sent.
        self.interim: InterimSink | None = None
        self._keep_recording_ms = engines.keep_recording_ms
        self._partials: PartialScheduler | None = None
        if engines.partial_results:
            self._partials = PartialScheduler(
                self._session.partial_interval_ms, engines.silence_ms,
                decode_ms=engines.decode_ms,
            )
        self._partial_task: asyncio.Task[None] | None = None
        # A final decode started at a pause, before the end-of-speech rule fires: if no
        # speech follows, it is the final transcript (the rule only adds silence), so
        # the answer does not wait for a decode that starts at the end of speech.
        self._speculation: asyncio.Task[Transcript] | None = None
        self._speculated_voiced_end_ms = 0.0
        self._speculate = (engines.speculative_decode and self.initiator.endpoint_on_silence
                           and engines.silence_ms >= SPECULATE_AFTER_MS + 100.0)
        self._early_end_ms = engines.early_endpoint_ms if self._speculate else 0.0
        self._guess_complete = False  # the standing guess is a complete request

    # ------------------------------------------------------------------ input

    @property
    def capture_stopped(self) -> bool:
        return self._stopped

    def feed(self, pcm: bytes, part: int = 1) -> bool:
        """Audio bytes of part ``part`` as they arrive. True exactly once: at the end of
        speech (or when nobody spoke), when the device must be told to stop capturing.

        Raises :class:`BadRequest` for a part with an odd byte count (B-AU-01) and for
        audio beyond ``max_audio_seconds``.
        """
        if part != self._part:
            self._close_part()
            self._part, self._parts = part, self._parts + 1
        self._part_bytes += len(pcm)
        self._bytes += len(pcm)
        if self._bytes > self._max_bytes:
            raise BadRequest(
                f"the audio is longer than the {self._max_bytes / 32000:g} s this server "
                "accepts in one SpeechRecognizer.Recognize"
            )
        if self._stopped:
            self.timings.ignored_ms += bytes_to_ms(len(pcm))  # B-AU-05
            return False
        self.timings.audio_ms += bytes_to_ms(len(pcm))
        if self._skip:
            dropped = min(self._skip, len(pcm))
            self._skip -= dropped
            pcm = pcm[dropped:]
            if not pcm:
                return False
        self._session.feed(pcm)
        for vad_event in self._detector.feed(pcm):
            if isinstance(vad_event, SpeechEnded | NoSpeech):
                self._end_of_speech(vad_event)
                return True
        self._while_capturing()
        if self._early_end_due():
            self._end_early()
            return True
        return False

    def end_of_audio(self) -> None:
        """The upload is complete. Without an end of speech so far (the device stopped
        early), the audio received is what there is: recognise it anyway."""
        self._close_part()
        if self._parts == 0 or self._bytes == 0:
            raise BadRequest(
                "SpeechRecognizer.Recognize carries no audio: send the captured speech as "
                "application/octet-stream parts after the JSON part (B-AU-02)"
            )
        if not self._stopped:
            for vad_event in self._detector.finish():
                if isinstance(vad_event, SpeechEnded | NoSpeech):
                    self._end_of_speech(vad_event)

    def stop_capture(self) -> Directive:
        """SpeechRecognizer.StopCapture for the downchannel (B-SR-01); marks it sent."""
        self.timings.stop_capture_at = time.perf_counter()
        return Directive.create(
            "SpeechRecognizer", "StopCapture", {}, dialog_request_id=self.dialog_request_id
        )

    def _close_part(self) -> None:
        if self._part and self._part_bytes % SAMPLE_WIDTH:
            raise BadRequest(
                f"audio part {self._part} has {self._part_bytes} bytes, an odd count: audio "
                f"must be whole 16-bit samples ({CAPTURE_FORMAT}, B-AU-01)"
            )
        self._part_bytes = 0

    def _while_capturing(self) -> None:
        """After a part that did not end the speech: KeepRecording and partial results."""
        start = self._detector.speech_start_ms
        if start is None:
            return  # nothing is being recognised yet
        self._speculate_at_pause()
        audio_ms = self.timings.audio_ms
        every = self._keep_recording_ms
        if every > 0 and audio_ms - start >= every * (self.timings.keep_recording + 1):
            # B-SR-04: a long request is still being recognised; keep capturing.
            self.timings.keep_recording += 1
            self._emit(keep_recording(self.dialog_request_id))
        partials = self._partials
        if partials is not None and partials.poll(
            audio_ms, speech_start_ms=start, silence_ms=self._detector.silence_run_ms
        ):
            self._partial_task = asyncio.create_task(self._partial(), name="voice-partial")

    def _speculate_at_pause(self) -> None:
        if not self._speculate:
            return
        detector = self._detector
        silence = detector.silence_run_ms
        voiced_end = detector.audio_ms - silence
        if self._speculation is not None and voiced_end > self._speculated_voiced_end_ms + VAD_SLACK_MS:
            self._drop_speculation()  # the user went on speaking: that guess is stale
        if self._speculation is None and silence >= SPECULATE_AFTER_MS:
            self._speculated_voiced_end_ms = voiced_end
            self._speculation = asyncio.create_task(self._session.aspeculate(),
                                                    name="voice-speculation")
            self._speculation.add_done_callback(self._on_guess)

    def _on_guess(self, task: asyncio.Task[Transcript]) -> None:
        """The pause's guess is in while the silence rule is still counting. Start
        rendering its answer's speech now, so that if the request ends here the answer
        does not wait for its MP3; and if the guess is a complete request, the capture
        may end early (:meth:`_early_end_due`)."""
        if task is not self._speculation or task.cancelled() or task.exception() is not None:
            return  # stale (the user went on) or failed: the final decode decides
        text = task.result().text.strip()
        if not text or self._stopped:
            return
        try:
            preview = self.assistant.preview_answer(text, self.event, self.device)
        except Exception:  # a guess that fails costs nothing but the guess
            _LOGGER.warning("answer preview failed", exc_info=True,
                            extra={"dialogRequestId": self.dialog_request_id})
            return
        self.timings.prefetched = preview.words is not None
        self._guess_complete = preview.complete
        if self._early_end_due():
            # Between parts: nobody is waiting on feed() to return True, so StopCapture
            # goes out from here (B-SR-01).
            self._end_early()
            self._emit(self.stop_capture())

    def _early_end_due(self) -> bool:
        """End of speech before the silence rule: the pause has lasted
        ``early_endpoint_ms``, nothing was said since its guess, and the guess is a
        complete request (understood, nothing to ask). A request that is not complete
        ("set an alarm for ...") still gets the whole rule to go on."""
        task = self._speculation
        if (self._early_end_ms <= 0 or self._stopped or not self._guess_complete
                or task is None or not task.done()):
            return False
        detector = self._detector
        silence = detector.silence_run_ms
        voiced_end = detector.audio_ms - silence
        return (silence >= self._early_end_ms
                and voiced_end <= self._speculated_voiced_end_ms + VAD_SLACK_MS)

    def _end_early(self) -> None:
        detector = self._detector
        start = detector.speech_start_ms
        self.timings.early_end = True
        self._end_of_speech(SpeechEnded(
            at_ms=detector.audio_ms,
            speech_end_ms=self._speculated_voiced_end_ms,
            speech_start_ms=start if start is not None else 0.0,
        ))

    def _drop_speculation(self) -> None:
        task, self._speculation = self._speculation, None
        self._guess_complete = False
        if task is not None:
            task.cancel()
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _final_transcript(self, vad_event: VadEvent) -> Transcript:
        task = self._speculation
        if (task is not None and isinstance(vad_event, SpeechEnded)
                and vad_event.speech_end_ms <= self._speculated_voiced_end_ms + VAD_SLACK_MS):
            try:
                transcript = await task
            except Exception:  # a failed guess: decode for real below
                _LOGGER.warning("speculative decode failed", exc_info=True,
                                extra={"dialogRequestId": self.dialog_request_id})
            else:
                self._session.adopt(transcript)
                self.timings.speculative = True
                return transcript
        self._drop_speculation()
        return await self._session.afinish()

    async def _partial(self) -> None:
        """One partial decode; its text, if new and still in time, as ShowRecognizedText."""
        partials = self._partials
        assert partials is not None
        started = time.perf_counter()
        try:
            text = await self._session.apartial()
        except Exception:  # a preview that fails must not fail the request
            _LOGGER.warning("partial recognition failed", exc_info=True,
                            extra={"dialogRequestId": self.dialog_request_id})
            text = None
        wall_ms = (time.perf_counter() - started) * 1000.0
        if text is not None:
            self.timings.partial_wall_ms += wall_ms
            self._engines.observe_decode(wall_ms)
        shown = partials.result(text, wall_ms=wall_ms if text is not None else None)
        if shown is not None:
            self._emit(show_recognized_text(self.dialog_request_id, shown))  # B-SR-03

    def _emit(self, directive: Directive) -> None:
        sink = self.interim
        if sink is None:
            return
        try:
            sink(directive)
        except Exception:  # an interim directive lost is not worth failing the request
            _LOGGER.warning("interim directive not sent", exc_info=True, extra={
                "dialogRequestId": self.dialog_request_id,
                "directive": directive.qualified_name,
            })

    def _end_of_speech(self, vad_event: VadEvent) -> None:
        self._stopped = True
        self._outcome = vad_event
        if self._partials is not None:
            self._partials.stop()  # nothing after StopCapture (PartialScheduler rule 4)
        t = self.timings
        t.detected_at = time.perf_counter()
        t.endpoint_ms = vad_event.at_ms
        if isinstance(vad_event, SpeechEnded):
            t.speech_start_ms = vad_event.speech_start_ms
            t.speech_end_ms = vad_event.speech_end_ms
        # Start answering now, while the device may still be uploading.
        self._answer = asyncio.create_task(self._respond(vad_event), name="voice-answer")

    # ------------------------------------------------------------------ output

    async def reply(self) -> Reply:
        """The answer; call after :meth:`end_of_audio`."""
        if self._answer is None:  # pragma: no cover - end_of_audio always starts it
            raise RuntimeError("reply() before the end of the audio")
        return await self._answer

    def cancel(self) -> None:
        """The request failed: stop preparing an answer nobody will get."""
        self._drop_speculation()
        if self._partials is not None:
            self._partials.stop()
        if self._partial_task is not None and not self._partial_task.done():
            self._partial_task.cancel()
        task = self._answer
        if task is None:
            return
        if not task.done():
            task.cancel()
        elif not task.cancelled():
            task.exception()  # retrieved: the request's own error is what gets reported

    def answer_sent(self) -> None:
        """The first byte of the answer went out: log the request's timings."""
        t = self.timings
        t.answer_at = time.perf_counter()
        _LOGGER.info("voice request", extra=self.summary())

    def summary(self) -> dict[str, Any]:
        t = self.timings
        transcript = self.transcript
        return {
            "device": self.device.device_id,
            "dialogRequestId": self.dialog_request_id,
            "lang": self.language,
            "outcome": type(self._outcome).__name__ if self._outcome else None,
            "text": transcript.text if transcript else None,
            "audio_ms": round(t.audio_ms, 1),
            "ignored_audio_ms": round(t.ignored_ms, 1),
            "speech_start_ms": t.speech_start_ms,
            "speech_end_ms": t.speech_end_ms,  # end of speech in the audio
            "endpoint_ms": t.endpoint_ms,  # where the silence rule fired
            "stop_capture_after_ms": t.after(t.stop_capture_at),
            "recognized_after_ms": t.after(t.recognized_at),
            "reply_ready_after_ms": t.after(t.reply_ready_at),
            "first_answer_byte_after_ms": t.after(t.answer_at),
            "decode_ms": round(t.decode_ms, 1) if t.decode_ms is not None else None,
            "speculative": t.speculative,
            "speech_prefetched": t.prefetched,
            "early_end": t.early_end,
            # The final decode's wait behind other decodes (e.g. a partial in flight).
            "final_wait_ms": _final_wait(t),
            "keep_recording": t.keep_recording,
            **self._partial_summary(),
        }

    def _partial_summary(self) -> dict[str, Any]:
        p = self._partials
        if p is None:
            return {}
        return {
            "partials_shown": p.shown,
            "partial_decodes": p.requested - p.declined,
            "partials_declined": p.declined,
            "partial_wall_ms": round(self.timings.partial_wall_ms, 1),
        }

    async def _respond(self, vad_event: VadEvent) -> Reply:
        response: IntentResponse
        if isinstance(vad_event, NoSpeech):
            response = IntentResponse.say(DIDNT_HEAR)
        else:
            self.transcript = transcript = await self._final_transcript(vad_event)
            self.timings.recognized_at = time.perf_counter()
            self.timings.decode_ms = transcript.decode_ms
            if transcript.decode_ms > 0:  # 0: too short to decode at all
                self._engines.observe_decode(transcript.decode_ms)
            text = transcript.text.strip()
            if not text:
                response = IntentResponse.say(DIDNT_HEAR)
            else:
                # Understood as a text request: a follow-up (speechId) continues its
                # dialogue, a lacking request asks (ExpectSpeech).
                response = self.assistant.answer(text, self.event, self.device)
        reply = await self.assistant.finish(response, self.event, self.device)
        self.timings.reply_ready_at = time.perf_counter()
        return reply


def show_recognized_text(dialog_request_id: str | None, text: str) -> Directive:
    """B-SR-03: partial text, on the downchannel, with the Recognize's dialogRequestId."""
    return Directive.create("SpeechRecognizer", "ShowRecognizedText", {"text": text},
                            dialog_request_id=dialog_request_id)


def keep_recording(dialog_request_id: str | None) -> Directive:
    """B-SR-04: recognition is still running; the device keeps capturing."""
    return Directive.create("SpeechRecognizer", "KeepRecording", {},
                            dialog_request_id=dialog_request_id)


def _final_wait(t: VoiceTimings) -> float | None:
    recognized = t.after(t.recognized_at)
    if recognized is None or t.decode_ms is None:
        return None
    return round(max(0.0, recognized - t.decode_ms), 1)


def _answer_hint(assistant: Assistant, event: Event, device: DeviceContext,
                 language: str) -> str | None:
    """The hint of the question this Recognize answers (its ``speechId``, B-SR-06)."""
    pending = assistant.dialogue.peek(device.device_id)
    speech_id = event.payload.get("speechId")
    if pending is None or not speech_id or speech_id != pending.speech_id:
        return None
    # The hints are English text: they would only mislead another language's model.
    return pending.question.hint if language == "en" else None


def recognize_language(payload: dict[str, Any], supported: frozenset[str]) -> str:
    """Check a Recognize payload's ``format`` and ``lang``; the language to recognise.

    ``format`` may be absent (it is Optional); when present it must be the one capture
    format (B-AU-01). A missing ``lang`` falls back to English (ambiguity #24).
    """
    fmt = payload.get("format")
    if fmt is not None and fmt != CAPTURE_FORMAT:
        raise BadRequest(
            f"unsupported audio format {fmt!r}: SpeechRecognizer.Recognize audio must be "
            f"{CAPTURE_FORMAT} (16 kHz, 16-bit little-endian, mono; B-AU-01)"
        )
    lang = payload.get("lang", DEFAULT_LANG)
    if lang is None:
        lang = DEFAULT_LANG
    if not isinstance(lang, str) or lang.split("-")[0].lower() not in supported:
        raise BadRequest(
            f"unsupported lang {lang!r} for speech recognition on this server "
            f"(supported: {', '.join(sorted(supported))})"
        )
    return lang.split("-")[0].lower()

