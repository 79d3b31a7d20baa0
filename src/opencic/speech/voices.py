"""Voices for the languages other than English (the English one is ``voice_model``).

Korean is spoken by eSpeak NG (``speech/espeak.py``: why, and how it sounds), unless
the ``tts_voices`` setting names a Piper voice of the user's own for it. A language
without a voice is answered on the display only; the server says so in its log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from .espeak import EspeakTextToSpeech, EspeakUnavailable
from .synthesizer import DEFAULT_CACHE_BYTES, SpeechSynthesizer
from .tts import PiperTextToSpeech, TextToSpeech

__all__ = ["VOICE_LANGUAGES", "other_voices"]

_LOGGER = logging.getLogger("opencic.speech")

VOICE_LANGUAGES = ("ko",)  # besides English: languages the assistant answers in


def other_voices(
    own: Mapping[str, Path] | None = None, *, cache_bytes: int = DEFAULT_CACHE_BYTES
) -> dict[str, SpeechSynthesizer]:
    """A synthesizer (MP3, cached) per language in :data:`VOICE_LANGUAGES` that has a
    voice: the user's Piper voice from ``own``, else eSpeak NG when it is installed."""
    own = own or {}
    voices: dict[str, SpeechSynthesizer] = {}
    for lang in VOICE_LANGUAGES:
        tts: TextToSpeech
        if lang in own:
            tts = PiperTextToSpeech(own[lang])
        else:
            espeak = EspeakTextToSpeech(lang)
            try:
                espeak.load()
            except (EspeakUnavailable, OSError) as exc:
                _LOGGER.warning("no voice for a language: its answers are shown, not spoken",
                                extra={"lang": lang, "reason": str(exc)})
                continue
            tts = espeak
        voices[lang] = SpeechSynthesizer(tts, cache_bytes=cache_bytes)
    return voices
