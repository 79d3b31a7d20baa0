"""Voice requests: ``SpeechRecognizer.Recognize`` with streamed audio, one turn at a time.

A :class:`VoiceTurn` is fed the request's audio as it arrives (the server never buffers
the body first) and says when the device must stop capturing; then it finishes the
recognition and answers along the same path as a text request (understand ->
capability -> Speak + RenderText ...). No HTTP here: the server drives it::

    turn = assistant.start_voice(event, device)       # validates format / lang (400)
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

Rules implemented: B-AU-01 (format, 16-bit samples), B-AU-05 (audio after StopCapture
is not processed), B-SR-01 (StopCapture carries the Recognize's dialogRequestId),
B-DI-07 (every directive of the answer carries it too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..protocol.errors import BadRequest
from ..protocol.messages import Directive, Event
from ..speech.audio import CAPTURE_FORMAT, SAMPLE_WIDTH, bytes_to_ms, ms_to_bytes
from ..speech.vad import EndOfSpeechDetector, NoSpeech, SpeechEnded, VadEvent
from .reply import Reply
from .turn import DeviceContext, IntentResponse

if TYPE_CHECKING:
    from ..speech.asr import RecognitionSession, SpeechRecognizer, Transcript
    from ..speech.vad import SileroVad
    from .core import Assistant

__all__ = ["DIDNT_HEAR", "SpeechInput", "VoiceTimings", "VoiceTurn"]

_LOGGER = logging.getLogger("opencic.voice")

DIDNT_HEAR = "Sorry, I didn't hear anything."
DEFAULT_LANG = "en"  # ambiguity #24: a Recognize without lang falls back to English


class SpeechInput:
    """The voice-input engines one process shares: end-of-speech detection and ASR.

    ``load()`` (awaited at server start-up) verifies and loads both models and runs
    one decode, so the first request pays nothing extra.
    """

    def __init__(
        self,
        recognizer: SpeechRecognizer,
        vad: SileroVad,
        *,
        max_audio_seconds: float = 30.0,
        silence_ms: float = 600.0,
        no_speech_timeout_ms: float = 5000.0,
    ) -> None:
        self.recognizer = recognizer
        self.vad = vad
        self.max_audio_seconds = max_audio_seconds
        self.silence_ms = silence_ms
        self.no_speech_timeout_ms = no_speech_timeout_ms

    @classmethod
    def default(cls, *, max_audio_seconds: float = 30.0) -> SpeechInput:
        """The bundled engines: Silero VAD (faster-whisper's copy), Whisper tiny.en."""
        from ..speech.asr import WhisperRecognizer
        from ..speech.vad import default_vad

        return cls(WhisperRecognizer(), default_vad(), max_audio_seconds=max_audio_seconds)

    async def load(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.vad.load)
        warm = getattr(self.recognizer, "awarm_up", None)
        if warm is not None:
            await warm()
        else:  # another engine: at least learn its languages (loads the model)
            await loop.run_in_executor(None, lambda: self.recognizer.languages)

    def close(self) -> None:
        close = getattr(self.recognizer, "close", None)
        if close is not None:
            close()

    def detector(self) -> EndOfSpeechDetector:
        return EndOfSpeechDetector(
            self.vad, silence_ms=self.silence_ms, no_speech_timeout_ms=self.no_speech_timeout_ms
        )


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
        self._detector = engines.detector()
        self._session: RecognitionSession = engines.recognizer.start(language)
        self._bytes = 0  # every audio byte received, before and after StopCapture
        self._part = 0  # index of the audio part being received
        self._part_bytes = 0
        self._parts = 0
        self._stopped = False  # end of speech reached: later audio is not processed
        self._outcome: VadEvent | None = None
        self._answer: asyncio.Task[Reply] | None = None
        self.transcript: Transcript | None = None
        self.timings = VoiceTimings()

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
        self._session.feed(pcm)
        for vad_event in self._detector.feed(pcm):
            if isinstance(vad_event, SpeechEnded | NoSpeech):
                self._end_of_speech(vad_event)
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

    def _end_of_speech(self, vad_event: VadEvent) -> None:
        self._stopped = True
        self._outcome = vad_event
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
        }

    async def _respond(self, vad_event: VadEvent) -> Reply:
        dialog = self.dialog_request_id
        response: IntentResponse
        if isinstance(vad_event, NoSpeech):
            response = IntentResponse.say(DIDNT_HEAR)
        else:
            self.transcript = transcript = await self._session.afinish()
            self.timings.recognized_at = time.perf_counter()
            self.timings.decode_ms = transcript.decode_ms
            text = transcript.text.strip()
            if not text:
                response = IntentResponse.say(DIDNT_HEAR)
            else:
                # Understood as a text request: a follow-up (speechId) continues its
                # dialogue, a lacking request asks (ExpectSpeech).
                response = self.assistant.answer(text, self.event, self.device)
        reply = await self.assistant.render(response, dialog)
        self.timings.reply_ready_at = time.perf_counter()
        return reply


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

