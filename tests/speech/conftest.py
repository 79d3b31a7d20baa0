"""Speech fixtures: the bundled Piper voice, VAD and Whisper models, loaded once per session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from opencic.speech import PcmAudio, PiperTextToSpeech
from opencic.speech.asr import WhisperRecognizer
from opencic.speech.audio import add_noise, bytes_to_ms, silence, to_capture_pcm, trim_silence
from opencic.speech.vad import SileroVad


@pytest.fixture(scope="session")
def piper_tts() -> PiperTextToSpeech:
    tts = PiperTextToSpeech()
    tts.load()
    return tts


# --------------------------------------------------------------------------- voice input
# Speech recognition and end-of-speech fixtures. Real engines throughout: the bundled
# Silero VAD and Whisper tiny.en models, loaded once per session; test speech is
# synthesised by our own Piper voice at test time and converted to capture format.

# Commands as a user would say them to a speaker (and as the assistant's intents expect).
VOICE_COMMANDS = (
    "what time is it",
    "set the volume to five",
    "what's the date today",
    "turn off the lights",
    "play some music",
    "set an alarm for seven thirty",
    "what's the weather like tomorrow",
    "turn the volume up",
    "pause the music",
    "set a timer for ten minutes",
    "cancel my alarm",
    "tell me a joke",
    "stop",
    "what's on my calendar",
    "turn on the kitchen lights",
)


@dataclass(frozen=True)
class Utterance:
    """Capture-format PCM of one spoken command inside silence, and where the speech is."""

    text: str
    pcm: bytes
    speech_start_ms: float
    speech_end_ms: float


def build_utterance(
    speech: bytes,
    text: str,
    *,
    lead_ms: float = 1000.0,
    trail_ms: float = 2000.0,
    snr_db: float | None = None,
    seed: int = 0,
) -> Utterance:
    """Wrap capture PCM in silence, optionally add white noise at ``snr_db`` over it all."""
    lead = silence(lead_ms)
    pcm = lead + speech + silence(trail_ms)
    if snr_db is not None:
        pcm = add_noise(pcm, snr_db, seed=seed, reference=speech)
    start = bytes_to_ms(len(lead))
    return Utterance(text, pcm, start, start + bytes_to_ms(len(speech)))


MakeUtterance = Callable[..., Utterance]


@pytest.fixture(scope="session")
def make_utterance() -> MakeUtterance:
    """:func:`build_utterance`, as a fixture so test modules need not import conftest."""
    return build_utterance


def synthesize_exactly(tts: PiperTextToSpeech, text: str) -> PcmAudio:
    """Piper without its random generator noise: the same text always gives the same
    samples, so recognition and endpointing results are reproducible run to run (the
    benchmark measures over the natural, random variation instead)."""
    from piper import SynthesisConfig

    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = tts.load().synthesize(text, syn_config=config)
    return PcmAudio(b"".join(chunk.audio_int16_bytes for chunk in chunks), tts.sample_rate)


@pytest.fixture(scope="session")
def spoken_commands(piper_tts: PiperTextToSpeech) -> dict[str, bytes]:
    """Each of VOICE_COMMANDS as 16 kHz capture PCM, synthesised once.

    Piper's quiet head and tail (up to ~250 ms) are trimmed, so the speech ends where the
    sound does: end-of-speech delays are measured from there, and pauses inserted
    between phrases are as long as they say.
    """
    return {
        text: trim_silence(to_capture_pcm(synthesize_exactly(piper_tts, text)))
        for text in VOICE_COMMANDS
    }


@pytest.fixture(scope="session")
def silero_vad() -> SileroVad:
    vad = SileroVad()
    vad.load()
    return vad


@pytest.fixture(scope="session")
def whisper() -> Iterator[WhisperRecognizer]:
    recognizer = WhisperRecognizer()
    recognizer.warm_up()
    yield recognizer
    recognizer.close()
