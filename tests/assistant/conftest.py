"""Assistant fixtures: one real voice, synthesizer and recognizer per session.

Real engines throughout (Piper, LAME, hassil); loading the voice once keeps the suite fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from support.clock import FIXED_NOW, SERVER_ZONE, fixed_clock

from opencic.assistant import Assistant, IntentRecognizer
from opencic.speech import PiperTextToSpeech, SpeechSynthesizer

__all__ = ["FIXED_NOW", "SERVER_ZONE", "fixed_clock"]


@pytest.fixture(scope="session")
def fixed_now() -> datetime:
    """What the ``assistant`` fixture's clock always says."""
    return FIXED_NOW


@pytest.fixture(scope="session")
def recognizer() -> IntentRecognizer:
    return IntentRecognizer()


@pytest.fixture(scope="session")
def piper_voice() -> PiperTextToSpeech:
    tts = PiperTextToSpeech()
    tts.load()
    return tts


@pytest.fixture(scope="session")
def synthesizer(piper_voice: PiperTextToSpeech) -> Iterator[SpeechSynthesizer]:
    synth = SpeechSynthesizer(piper_voice)
    yield synth
    synth.close()


@pytest.fixture(scope="session")
def assistant(synthesizer: SpeechSynthesizer, recognizer: IntentRecognizer) -> Assistant:
    return Assistant(synthesizer, clock=fixed_clock, intents=recognizer)
