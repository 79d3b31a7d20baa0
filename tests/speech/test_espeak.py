"""Korean speech output with eSpeak NG (speech/espeak.py), through the MP3 cache."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import miniaudio
import pytest

from opencic.speech import espeak
from opencic.speech.espeak import EspeakTextToSpeech, EspeakUnavailable
from opencic.speech.synthesizer import SpeechSynthesizer
from opencic.speech.voices import other_voices


def _available() -> bool:
    try:
        espeak.find_espeak()
    except EspeakUnavailable:
        return False
    return True


pytestmark = pytest.mark.skipif(not _available() and os.environ.get("CI") != "true",
                                reason="eSpeak NG is not installed (the multilingual extra)")


def test_korean_text_becomes_speech() -> None:
    tts = EspeakTextToSpeech("ko")
    audio = tts.synthesize("지금은 오후 일곱 시예요.")
    assert audio.sample_rate == 22050
    assert 1.0 < audio.duration_seconds < 5.0
    assert max(abs(int.from_bytes(audio.samples[i:i + 2], "little", signed=True))
               for i in range(0, len(audio.samples), 2)) > 1000  # not silence
    assert tts.voice_id == "espeak-ng:ko@150"


def test_concurrent_syntheses_do_not_mix() -> None:
    # eSpeak NG varies its output a little from run to run (a few ms), so the check is
    # that each text keeps its own length: mixed-up buffers would swap or merge them.
    tts = EspeakTextToSpeech("ko")
    texts = ["네", "볼륨을 얼마로 맞출까요?", "오늘은 이천이십육 년 십일월 이십사 일 화요일이에요."] * 4
    alone = {text: tts.synthesize(text).duration_seconds for text in set(texts)}
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda t: tts.synthesize(t).duration_seconds, texts))
    for text, seconds in zip(texts, together, strict=True):
        assert seconds == pytest.approx(alone[text], rel=0.1), text


def test_mp3_through_the_cache() -> None:
    synthesizer = SpeechSynthesizer(EspeakTextToSpeech("ko"))
    try:
        mp3 = synthesizer.synthesize_mp3("안녕하세요! 무엇을 도와드릴까요?")
        assert miniaudio.decode(mp3, nchannels=1).duration > 1.0
        assert synthesizer.cached("안녕하세요! 무엇을 도와드릴까요?") == mp3
    finally:
        synthesizer.close()


def test_other_voices_has_korean() -> None:
    voices = other_voices()
    assert set(voices) == {"ko"}
    assert voices["ko"].tts.voice_id.startswith("espeak-ng:ko")
    for voice in voices.values():
        voice.close()


def test_without_a_library_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_loader(name: str, *args: object, **kwargs: object) -> object:
        if name == "espeakng_loader":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_loader)
    monkeypatch.setattr(espeak.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(EspeakUnavailable, match=r"opencic\[multilingual\].*libespeak-ng1"):
        espeak.find_espeak()
