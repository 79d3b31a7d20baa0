"""Korean (and other non-English) speech output with eSpeak NG, driven through ctypes.

Why eSpeak NG: no Korean or Japanese Piper voice ships inside a PyPI package (the
voices are hub downloads, which this project does not do), and the neural Korean
engines we checked on PyPI ship no model (piper-plus, melotts-onnx: hub downloads) or
need Python 3.12 (echoact). eSpeak NG is a formant synthesiser: robotic, with flat
prosody, but small, fast (a reply in a few milliseconds) and it ships a Korean voice. We also tried the other offline route,
the bundled English Piper voice fed eSpeak's Korean phonemes: an English speaker
reading Korean phonemes, about 20 times slower to make, and no better understood by
Whisper base (neither was recognised: character error rates over 100 %, README).

The library comes from ``espeakng-loader`` (a wheel with libespeak-ng 1.52 and its data,
installed by the ``multilingual`` extra), else from Debian's ``libespeak-ng1`` when it is
installed (``apt-get install libespeak-ng1``). Without either, :class:`EspeakUnavailable`
says what to install.

eSpeak NG keeps its state in globals: one process-wide initialisation, and every
synthesis holds one lock (a reply takes milliseconds, so nobody waits long).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass

from .tts import PcmAudio

__all__ = ["EspeakTextToSpeech", "EspeakUnavailable", "find_espeak"]

# espeak_AUDIO_OUTPUT: SYNCHRONOUS hands the samples to our callback, no sound device.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1  # espeak_PARAMETER: words per minute
_EE_OK = 0

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakUnavailable(RuntimeError):
    """No eSpeak NG library could be found or initialised."""


@dataclass(frozen=True, slots=True)
class EspeakLibrary:
    path: str
    data_path: str | None  # None: the library's own default (Debian's package data)
    origin: str  # "espeakng-loader" or "system"


def find_espeak() -> EspeakLibrary:
    """eSpeak NG from the ``espeakng-loader`` wheel, else the system library."""
    try:
        import espeakng_loader  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        return EspeakLibrary(
            espeakng_loader.get_library_path(), espeakng_loader.get_data_path(),
            "espeakng-loader",
        )
    system = ctypes.util.find_library("espeak-ng")
    if system is not None:
        return EspeakLibrary(system, None, "system")
    raise EspeakUnavailable(
        "speech output in this language needs eSpeak NG: pip install "
        "'opencic[multilingual]' (espeakng-loader), or apt-get install libespeak-ng1"
    )


class _Engine:
    """The process-wide eSpeak NG instance: loaded and initialised once."""

    def __init__(self, library: EspeakLibrary) -> None:
        self.library = library
        lib = ctypes.CDLL(library.path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        data = library.data_path.encode() if library.data_path else None
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise EspeakUnavailable(f"eSpeak NG ({library.path}) failed to initialise")
        self.sample_rate = rate
        self._lib = lib
        self._chunks: list[bytes] = []
        # Kept on self: ctypes must not free the callback while the library holds it.
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, events: int) -> int:
        if count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # 0: go on

    def synthesize(self, text: str, voice: str, rate: int) -> bytes:
        """Caller holds :attr:`lock`."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise EspeakUnavailable(f"eSpeak NG has no voice {voice!r}")
        self._lib.espeak_SetParameter(_ESPEAK_RATE, rate, 0)
        self._chunks = []
        data = text.encode() + b"\0"
        status = self._lib.espeak_Synth(
            data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
        )
        if status != _EE_OK:
            raise RuntimeError(f"eSpeak NG could not synthesise (error {status})")
        self._lib.espeak_Synchronize()
        chunks, self._chunks = self._chunks, []
        return b"".join(chunks)


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()


def _engine() -> _Engine:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = _Engine(find_espeak())
        return _ENGINE


class EspeakTextToSpeech:
    """:class:`~opencic.speech.tts.TextToSpeech` speaking ``voice`` (an eSpeak NG voice
    name such as ``ko``) at ``rate`` words per minute. Thread-safe."""

    def __init__(self, voice: str, *, rate: int = 150) -> None:
        self.voice = voice
        self.rate = rate

    @property
    def voice_id(self) -> str:
        return f"espeak-ng:{self.voice}@{self.rate}"

    @property
    def library(self) -> EspeakLibrary:
        return _engine().library

    def load(self) -> None:
        """Find and initialise the library now (raises :class:`EspeakUnavailable`)."""
        _engine()

    def synthesize(self, text: str) -> PcmAudio:
        engine = _engine()
        with engine.lock:
            samples = engine.synthesize(text, self.voice, self.rate)
        return PcmAudio(samples, engine.sample_rate)

