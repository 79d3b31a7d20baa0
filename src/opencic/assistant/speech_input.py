"""The voice-input engines one server process shares, and the rules it applies.

:class:`SpeechInput` holds the models (Silero VAD for end of speech, a
:class:`~opencic.speech.asr.SpeechRecognizer` for recognition) and the speech settings
every :class:`~opencic.assistant.voice.VoiceTurn` follows: the end-of-speech silence
rule, the no-speech timeout, the longest audio, partial results (B-SR-03) and
KeepRecording (B-SR-04). :meth:`SpeechInput.from_settings` maps the server's settings.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..speech.vad import EndOfSpeechDetector

if TYPE_CHECKING:
    from ..config import Settings
    from ..speech.asr import SpeechRecognizer
    from ..speech.vad import SileroVad

__all__ = ["SpeechInput"]


class SpeechInput:
    """The voice-input engines one process shares: end-of-speech detection and ASR.

    ``load()`` (awaited at server start-up) verifies and loads both models and runs
    one decode, so the first request pays nothing extra. The options are the speech
    settings of :class:`~opencic.config.Settings` (see :meth:`from_settings`).
    """

    def __init__(
        self,
        recognizer: SpeechRecognizer,
        vad: SileroVad,
        *,
        max_audio_seconds: float = 30.0,
        silence_ms: float = 600.0,
        no_speech_timeout_ms: float = 5000.0,
        partial_results: bool = False,
        keep_recording_ms: float = 4000.0,
        speculative_decode: bool = True,
        early_endpoint_ms: float = 0.0,
    ) -> None:
        self.recognizer = recognizer
        self.vad = vad
        self.max_audio_seconds = max_audio_seconds
        self.silence_ms = silence_ms
        self.no_speech_timeout_ms = no_speech_timeout_ms
        self.partial_results = partial_results  # B-SR-03: off unless arranged
        self.keep_recording_ms = keep_recording_ms  # 0: never send KeepRecording
        self.speculative_decode = speculative_decode  # final decode begun at a pause
        # End at this silence when the pause's guess is a complete request (0: never).
        self.early_endpoint_ms = early_endpoint_ms
        # Expected wall time of one decode, learned from every final and partial decode
        # (PartialScheduler rule 1): under load decodes get slower and previews keep
        # further from the end of speech; once a decode takes longer than the silence
        # rule, there are none until decodes are fast again. Finals keep it current even
        # while no preview runs.
        self.decode_ms = 300.0

    def observe_decode(self, ms: float) -> None:
        """A decode took ``ms``: update the estimate (recent decodes weigh most)."""
        self.decode_ms += 0.5 * (ms - self.decode_ms)

    @classmethod
    def default(
        cls, *, max_audio_seconds: float = 30.0, model_path: str | Path | None = None, **options: Any
    ) -> SpeechInput:
        """The bundled engines: Silero VAD (faster-whisper's copy) and Whisper tiny.en
        (SHA-256 checked at load), or the Whisper model directory ``model_path``."""
        from ..speech.asr import WhisperRecognizer
        from ..speech.vad import default_vad

        return cls(WhisperRecognizer(model_path), default_vad(),
                   max_audio_seconds=max_audio_seconds, **options)

    @classmethod
    def from_settings(cls, settings: Settings) -> SpeechInput:
        """The engines and rules the server's settings ask for (config.py checked them)."""
        from ..speech.asr import WhisperRecognizer
        from ..speech.vad import default_vad

        recognizer = WhisperRecognizer(
            settings.asr_model_path, partial_interval_ms=settings.partial_results_interval_ms
        )
        return cls(
            recognizer,
            default_vad(),
            max_audio_seconds=settings.max_audio_seconds,
            silence_ms=settings.vad_silence_ms,
            no_speech_timeout_ms=settings.no_speech_timeout_seconds * 1000.0,
            partial_results=settings.partial_results,
            keep_recording_ms=settings.keep_recording_seconds * 1000.0,
            speculative_decode=settings.speculative_decode,
            early_endpoint_ms=settings.early_endpoint_ms,
        )

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

    def detector(self, *, endpoint_on_silence: bool = True) -> EndOfSpeechDetector:
        """``endpoint_on_silence`` False (press-and-hold): neither silence nor a late
        start ends the request; the end of the upload does (``finish``)."""
        if not endpoint_on_silence:
            never = self.max_audio_seconds * 1000.0 + 1.0
            return EndOfSpeechDetector(self.vad, silence_ms=never, no_speech_timeout_ms=never)
        return EndOfSpeechDetector(
            self.vad, silence_ms=self.silence_ms, no_speech_timeout_ms=self.no_speech_timeout_ms
        )
