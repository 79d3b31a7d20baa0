"""End-of-speech detection: Silero VAD run incrementally over streamed capture audio.

Interface: an :class:`EndOfSpeechDetector` per request. ``feed(pcm)`` takes capture PCM in
parts of any size (devices send 200 ms = 6,400 bytes) and returns the events that part
produced; ``finish()`` closes the stream. Events, with times in milliseconds of *audio*
from the start of the stream (not wall clock, so they are reproducible):

- :class:`SpeechStarted` — speech has begun (``at_ms`` = its first voiced window);
- :class:`SpeechEnded` — the silence rule fired: ``silence_ms`` of non-speech followed
  speech. ``at_ms`` is where the rule fired (what StopCapture reacts to), ``speech_end_ms``
  where the last voiced window ended;
- :class:`NoSpeech` — no speech within ``no_speech_timeout_ms`` (or before the stream
  ended): the "I didn't hear anything" outcome.

After SpeechEnded or NoSpeech the detector is done and ignores further audio (B-AU-05:
audio after StopCapture is not processed). Other detectors plug in by implementing
:class:`SpeechEndpointer`.

Engine: the Silero VAD v6 ONNX model that faster-whisper ships as package data
(``faster_whisper/assets/silero_vad_v6.onnx``, MIT), run with onnxruntime directly. It
sees 512-sample (32 ms) windows at 16 kHz with the previous window's last 64 samples as
context and carries an LSTM state (h, c) from window to window, so streaming costs one
small model run per 32 ms. On this 2-core machine that is ~0.15 ms per window: well under
1 % of a core per stream. The model is loaded once and shared; each detector keeps its
own state, so one session serves any number of concurrent streams.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from .audio import SAMPLE_RATE, SAMPLE_WIDTH, pcm16_to_float32

if TYPE_CHECKING:
    import onnxruntime  # type: ignore[import-untyped]

    from .audio import FloatArray

WINDOW_SAMPLES = 512  # what Silero is trained on at 16 kHz
CONTEXT_SAMPLES = 64  # the tail of the previous window the model sees with each window
WINDOW_MS = WINDOW_SAMPLES * 1000 / SAMPLE_RATE  # 32 ms
_STATE_SHAPE = (1, 1, 128)

# The model file of faster-whisper==1.2.1 (pinned in pyproject). A different file under
# the same name means a different package build: refuse it rather than endpoint with an
# unknown model. A user-supplied model (``model_path``) is checked only if a hash is given.
SILERO_VAD_FILE = "silero_vad_v6.onnx"
SILERO_VAD_SHA256 = "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2"


class ModelIntegrityError(RuntimeError):
    """A model file is missing or its SHA-256 is not the expected one."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise :class:`ModelIntegrityError` unless ``path`` exists with SHA-256 ``expected``."""
    if not path.is_file():
        raise ModelIntegrityError(f"model file not found: {path}")
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ModelIntegrityError(
            f"SHA-256 mismatch for model file {path}: expected {expected.lower()}, got "
            f"{actual}. The installed package is not the pinned, tested build; reinstall "
            "it, or point the model path setting at a model you trust."
        )


def default_silero_path() -> Path:
    """The Silero VAD model inside the installed faster-whisper package (no network)."""
    import importlib.util

    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or spec.origin is None:
        raise ModelIntegrityError("faster-whisper is not installed; it ships the VAD model")
    return Path(spec.origin).parent / "assets" / SILERO_VAD_FILE


class SileroVad:
    """The Silero ONNX model, loaded once (lazily) and shared by every detector.

    ``model_path`` overrides the bundled file (the ``speech.vad_model_path`` setting maps
    here); ``sha256`` defaults to the pinned constant for the bundled file and to "no
    check" for an override, unless one is given.
    """

    def __init__(self, model_path: str | Path | None = None, *, sha256: str | None = None):
        if model_path is None:
            self.model_path = default_silero_path()
            self.expected_sha256: str | None = sha256 or SILERO_VAD_SHA256
        else:
            self.model_path = Path(model_path)
            self.expected_sha256 = sha256
        self._session: onnxruntime.InferenceSession | None = None
        self._lock = threading.Lock()

    def load(self) -> onnxruntime.InferenceSession:
        session = self._session
        if session is not None:
            return session
        with self._lock:
            if self._session is None:
                if self.expected_sha256 is not None:
                    verify_sha256(self.model_path, self.expected_sha256)
                elif not self.model_path.is_file():
                    raise ModelIntegrityError(f"VAD model file not found: {self.model_path}")
                import onnxruntime

                opts = onnxruntime.SessionOptions()
                # One thread: a window is ~0.15 ms of work, so thread hand-offs would cost
                # more than they save, and many concurrent streams parallelise by themselves.
                opts.intra_op_num_threads = 1
                opts.inter_op_num_threads = 1
                opts.log_severity_level = 3
                self._session = onnxruntime.InferenceSession(
                    str(self.model_path), sess_options=opts, providers=["CPUExecutionProvider"]
                )
            return self._session

    def new_state(self) -> SileroState:
        return SileroState()

    def probabilities(self, windows: FloatArray, state: SileroState) -> FloatArray:
        """Speech probability of each 512-sample window, in order, advancing ``state``.

        ``windows`` has shape (n, 512). The model treats the batch as a sequence over one
        (h, c) state, so a whole 200 ms part is one run (checked equal to window by window).
        onnxruntime's ``run`` is thread-safe; the state is per stream.
        """
        session = self.load()
        n = windows.shape[0]
        contexts = np.empty((n, CONTEXT_SAMPLES), np.float32)
        contexts[0] = state.context
        if n > 1:
            contexts[1:] = windows[:-1, -CONTEXT_SAMPLES:]
        batch = np.concatenate([contexts, windows], axis=1)
        probs, state.h, state.c = session.run(None, {"input": batch, "h": state.h, "c": state.c})
        state.context = windows[-1, -CONTEXT_SAMPLES:].copy()
        result: FloatArray = np.asarray(probs, dtype=np.float32).reshape(n)
        return result


@dataclass(slots=True)
class SileroState:
    """One stream's recurrent state: LSTM h/c and the last 64 samples seen."""

    h: FloatArray
    c: FloatArray
    context: FloatArray

    def __init__(self) -> None:
        self.h = np.zeros(_STATE_SHAPE, np.float32)
        self.c = np.zeros(_STATE_SHAPE, np.float32)
        self.context = np.zeros(CONTEXT_SAMPLES, np.float32)


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at_ms: float


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    at_ms: float  # where the silence rule fired, in audio time
    speech_end_ms: float  # end of the last voiced window
    speech_start_ms: float


@dataclass(frozen=True, slots=True)
class NoSpeech:
    at_ms: float


VadEvent = SpeechStarted | SpeechEnded | NoSpeech


@runtime_checkable
class SpeechEndpointer(Protocol):
    """Streamed capture PCM in, speech start/end events out (see the module docstring)."""

    @property
    def done(self) -> bool: ...

    def feed(self, pcm: bytes) -> list[VadEvent]: ...

    def finish(self) -> list[VadEvent]: ...


_shared_lock = threading.Lock()
_shared_model: SileroVad | None = None


def default_vad() -> SileroVad:
    """The process-wide bundled Silero model (one ONNX session for all detectors)."""
    global _shared_model
    with _shared_lock:
        if _shared_model is None:
            _shared_model = SileroVad()
        return _shared_model


class EndOfSpeechDetector:
    """Silero-based endpointing for one capture stream. Not thread-safe: one per request.

    Rules (times rounded up to whole 32 ms windows):

    - a window is *voiced* when its probability is >= ``threshold``, *unvoiced* when it is
      below ``threshold - 0.15`` (Silero's own hysteresis); in between it keeps the current
      state, so a dip in a soft syllable neither starts nor ends anything;
    - speech starts after ``min_speech_ms`` of consecutive voiced windows (short clicks and
      noise bursts do not count);
    - once speech has started, silence begins at the first unvoiced window and speech ends
      when ``silence_ms`` pass without a voiced window (pauses between words are shorter
      than the default 0.6 s);
    - nothing voiced in the first ``no_speech_timeout_ms`` → NoSpeech.
    """

    def __init__(
        self,
        vad: SileroVad | None = None,
        *,
        silence_ms: float = 600.0,
        no_speech_timeout_ms: float = 5000.0,
        threshold: float = 0.5,
        min_speech_ms: float = 90.0,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"the VAD takes {SAMPLE_RATE} Hz capture audio; resample first")
        if not 0.0 < threshold < 1.0:
            raise ValueError("threshold must be between 0 and 1")
        self.vad = vad if vad is not None else default_vad()
        self.silence_ms = silence_ms
        self.no_speech_timeout_ms = no_speech_timeout_ms
        self.threshold = threshold
        self.neg_threshold = max(0.01, threshold - 0.15)
        self._silence_windows = max(1, math.ceil(silence_ms / WINDOW_MS))
        self._min_speech_windows = max(1, math.ceil(min_speech_ms / WINDOW_MS))
        self._state = self.vad.new_state()
        self._pending = np.empty(0, np.float32)  # samples short of a whole window
        self._odd_byte = b""  # a part may end in the middle of a sample
        self._windows = 0  # windows processed so far
        self._voiced_run = 0
        self._run_start = 0  # first window of the current voiced run
        self._unvoiced_run = 0
        self._speech_start: int | None = None  # window index
        self._last_voiced_end = 0  # window index just after the last voiced window
        self._done = False
        self.events: list[VadEvent] = []  # everything reported so far, for logs and tests
        self.max_probability = 0.0

    @property
    def done(self) -> bool:
        return self._done

    @property
    def in_speech(self) -> bool:
        return self._speech_start is not None and not self._done

    @property
    def speech_start_ms(self) -> float | None:
        """Where speech started, in audio time; None before it has."""
        return None if self._speech_start is None else self._ms(self._speech_start)

    @property
    def silence_run_ms(self) -> float:
        """The silence run the end-of-speech rule is counting (0 while voiced): how close
        the rule is to firing, which partial results keep clear of."""
        return self._ms(self._unvoiced_run)

    @property
    def audio_ms(self) -> float:
        """Audio consumed so far, including samples still waiting for a whole window."""
        return (self._windows * WINDOW_SAMPLES + self._pending.size) * 1000.0 / SAMPLE_RATE

    def feed(self, pcm: bytes) -> list[VadEvent]:
        """Process one part of capture audio; the events it caused (often none)."""
        if self._done or not pcm:
            return []
        data = self._odd_byte + bytes(pcm)
        cut = len(data) - len(data) % SAMPLE_WIDTH
        self._odd_byte = data[cut:]
        samples = np.concatenate([self._pending, pcm16_to_float32(data[:cut])])
        whole = samples.size - samples.size % WINDOW_SAMPLES
        self._pending = samples[whole:].copy()
        if whole == 0:
            return []
        windows = samples[:whole].reshape(-1, WINDOW_SAMPLES)
        probs = self.vad.probabilities(windows, self._state)
        events: list[VadEvent] = []
        for prob in probs.tolist():
            event = self._step(prob)
            if event is not None:
                events.append(event)
                if self._done:
                    break
        self.events.extend(events)
        return events

    def finish(self) -> list[VadEvent]:
        """The stream ended: close an open utterance, or report that nobody spoke."""
        if self._done:
            return []
        self._done = True
        end_ms = self.audio_ms
        event: VadEvent
        if self._speech_start is None:
            event = NoSpeech(end_ms)
        else:
            event = SpeechEnded(
                at_ms=end_ms,
                speech_end_ms=self._ms(self._last_voiced_end),
                speech_start_ms=self._ms(self._speech_start),
            )
        self.events.append(event)
        return [event]

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _ms(window: int) -> float:
        return window * WINDOW_MS

    def _step(self, prob: float) -> VadEvent | None:
        index = self._windows
        self._windows += 1
        self.max_probability = max(self.max_probability, prob)
        voiced = prob >= self.threshold
        unvoiced = prob < self.neg_threshold
        if self._speech_start is None:
            if voiced:
                if self._voiced_run == 0:
                    self._run_start = index
                self._voiced_run += 1
                if self._voiced_run >= self._min_speech_windows:
                    self._speech_start = self._run_start
                    self._last_voiced_end = index + 1
                    return SpeechStarted(self._ms(self._run_start))
            elif unvoiced:
                self._voiced_run = 0
            if self._ms(self._windows) >= self.no_speech_timeout_ms and self._voiced_run == 0:
                self._done = True
                return NoSpeech(self._ms(self._windows))
            return None
        if voiced:
            self._unvoiced_run = 0
            self._last_voiced_end = index + 1
        elif unvoiced or self._unvoiced_run:
            # Silence starts at the first window below the lower threshold; uncertain
            # windows after it extend it (Silero's VADIterator rule) but do not start it.
            self._unvoiced_run += 1
            if self._unvoiced_run >= self._silence_windows:
                self._done = True
                return SpeechEnded(
                    at_ms=self._ms(self._windows),
                    speech_end_ms=self._ms(self._last_voiced_end),
                    speech_start_ms=self._ms(self._speech_start),
                )
        return None
