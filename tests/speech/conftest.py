"""Speech fixtures: the bundled Piper voice, loaded once per test session."""

from __future__ import annotations

import pytest

from opencic.speech import PiperTextToSpeech


@pytest.fixture(scope="session")
def piper_tts() -> PiperTextToSpeech:
    tts = PiperTextToSpeech()
    tts.load()
    return tts
