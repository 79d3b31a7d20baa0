"""Spoken requests for voice tests, synthesised at test time with the project's own TTS.

Piper's random generator noise is switched off so the same text always gives the same
samples (recognition and endpointing are reproducible); the audio is resampled to the
capture format (16 kHz mono L16) and its quiet head and tail are trimmed, so silence
added around it is exactly as long as it says.
"""

from __future__ import annotations

import functools

from opencic.speech import PcmAudio, PiperTextToSpeech
from opencic.speech.audio import silence, to_capture_pcm, trim_silence


@functools.cache
def _voice() -> PiperTextToSpeech:
    tts = PiperTextToSpeech()
    tts.load()
    return tts


@functools.cache
def spoken(text: str) -> bytes:
    """``text`` spoken by the bundled voice, as trimmed capture-format PCM."""
    from piper import SynthesisConfig

    tts = _voice()
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = tts.load().synthesize(text, syn_config=config)
    audio = PcmAudio(b"".join(chunk.audio_int16_bytes for chunk in chunks), tts.sample_rate)
    return trim_silence(to_capture_pcm(audio))


def utterance(text: str, *, lead_ms: float = 300.0, trail_ms: float = 2000.0) -> bytes:
    """Silence, ``text`` spoken, then ``trail_ms`` of silence (capture-format PCM)."""
    return silence(lead_ms) + spoken(text) + silence(trail_ms)


@functools.cache
def spoken_korean(text: str) -> bytes:
    """``text`` spoken by the Korean voice (eSpeak NG), as trimmed capture-format PCM.

    eSpeak varies its output slightly from run to run; cached so one test session sends
    the same samples each time. Whisper base recognises this voice poorly (README), so
    tests that use it assert what the server did with Korean, not the exact words.
    """
    from opencic.speech.espeak import EspeakTextToSpeech

    return trim_silence(to_capture_pcm(EspeakTextToSpeech("ko").synthesize(text)))
