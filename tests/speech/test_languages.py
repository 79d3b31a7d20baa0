"""Speech recognition per lang (speech/languages.py): routing, the reasons a language is
refused, the asr_models setting, background loading; and the real Korean model."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from opencic.speech import languages as speech_languages
from opencic.speech.asr import UnsupportedLanguageError, WhisperRecognizer
from opencic.speech.languages import (
    LanguageRouter,
    MultilingualWhisper,
    build_router,
    parse_language_paths,
)
from opencic.speech.model_join import multilingual_parts_installed


class FakeRecognizer:
    def __init__(self, name: str, *, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.started: list[str] = []
        self.warmed = 0
        self.closed = False

    @property
    def languages(self) -> frozenset[str]:
        return frozenset({"en", "ko"})

    def start(self, language: str = "en", *, hint: str | None = None) -> Any:
        self.started.append(language)
        return (self.name, language)

    async def awarm_up(self) -> None:
        await asyncio.sleep(0)
        self.warmed += 1
        if self.fail:
            raise RuntimeError("model file is damaged")

    def close(self) -> None:
        self.closed = True


def test_each_language_goes_to_its_recognizer() -> None:
    english, korean = FakeRecognizer("tiny.en"), FakeRecognizer("base")
    router = LanguageRouter({"en": english, "ko": korean})
    assert router.languages == {"en", "ko"}
    assert router.start("ko") == ("base", "ko")
    assert router.start("en") == ("tiny.en", "en")
    with pytest.raises(UnsupportedLanguageError, match="'ja'"):
        router.start("ja")
    router.close()
    assert english.closed and korean.closed


def test_a_known_language_without_its_model_is_refused_with_the_reason() -> None:
    router = LanguageRouter({"en": FakeRecognizer("tiny.en")},
                            unavailable={"ko": "lang 'ko' needs the multilingual speech model"})
    assert router.languages == {"en"}
    assert router.unavailable_reason("ko") == "lang 'ko' needs the multilingual speech model"
    assert router.unavailable_reason("ja") is None
    with pytest.raises(UnsupportedLanguageError, match="needs the multilingual"):
        router.start("ko")


def test_primary_is_warmed_first_and_the_others_in_the_background() -> None:
    english, korean = FakeRecognizer("tiny.en"), FakeRecognizer("base")

    async def go() -> None:
        router = LanguageRouter({"en": english, "ko": korean})
        await router.awarm_up()
        assert english.warmed == 1
        await router.wait_ready()
        assert korean.warmed == 1
        router.close()

    asyncio.run(go())


def test_without_preload_the_others_load_on_first_use() -> None:
    english, korean = FakeRecognizer("tiny.en"), FakeRecognizer("base")

    async def go() -> None:
        router = LanguageRouter({"en": english, "ko": korean}, preload=False)
        await router.awarm_up()
        await router.wait_ready()
        assert (english.warmed, korean.warmed) == (1, 0)

    asyncio.run(go())


def test_a_model_that_fails_to_load_makes_its_languages_unavailable() -> None:
    english, korean = FakeRecognizer("tiny.en"), FakeRecognizer("base", fail=True)

    async def go() -> LanguageRouter:
        router = LanguageRouter({"en": english, "ko": korean})
        await router.awarm_up()
        await router.wait_ready()
        return router

    router = asyncio.run(go())
    assert router.languages == {"en"}
    reason = router.unavailable_reason("ko")
    assert reason is not None and "model file is damaged" in reason


def test_parse_language_paths() -> None:
    assert parse_language_paths("") == {}
    assert parse_language_paths(" ko = /models/a , en=/models/b") == {
        "ko": Path("/models/a"), "en": Path("/models/b")}
    for bad, words in (("ko", "LANG=PATH"), ("xx=/a", "unknown lang"), ("ko=/a,ko=/b", "twice"),
                       ("ko=", "LANG=PATH")):
        with pytest.raises(ValueError, match=words):
            parse_language_paths(bad)


def test_without_the_extra_korean_is_refused_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(speech_languages, "multilingual_parts_installed", lambda: False)
    english = FakeRecognizer("tiny.en")
    router = build_router(english)  # type: ignore[arg-type]
    assert router.languages == {"en"}
    reason = router.unavailable_reason("ko")
    assert reason is not None
    assert "pip install 'opencic[multilingual]'" in reason and "asr_models" in reason


def test_a_users_model_serves_its_language_without_being_loaded(tmp_path: Path) -> None:
    english = FakeRecognizer("tiny.en")
    router = build_router(english, models={"ko": tmp_path / "whisper-small"})  # type: ignore[arg-type]
    korean = router.routes["ko"]
    assert isinstance(korean, MultilingualWhisper)
    assert korean.model_path == tmp_path / "whisper-small"
    assert korean.expected_sha256 is None  # the user's own: nothing to check it against
    assert router.languages == {"en", "ko"}
    assert not korean.loaded  # opening a session must not load it on the event loop
    session = router.start("ko")
    assert session.language == "ko" and not korean.loaded
    router.close()


needs_model = pytest.mark.skipif(
    not multilingual_parts_installed() and os.environ.get("CI") != "true",
    reason="the multilingual extra is not installed")


@needs_model
def test_bundled_router_recognises_korean_with_the_joined_model(tmp_path: Path) -> None:
    """The real path: tiny.en for en, the joined base model for ko (joined into a fresh
    cache here), loaded in the background after English."""

    async def go() -> tuple[str, str]:
        router = build_router(WhisperRecognizer(), cache_dir=tmp_path)
        assert router.languages == {"en", "ko"}
        await router.awarm_up()
        await router.wait_ready()
        korean = router.routes["ko"]
        assert isinstance(korean, MultilingualWhisper) and korean.loaded
        assert korean.model_path.parent == tmp_path
        silence = b"\x00\x00" * 16000
        session = router.start("ko")
        session.feed(silence)
        transcript = await session.afinish()
        english = router.start("en")
        router.close()
        return transcript.language, english.language

    assert asyncio.run(go()) == ("ko", "en")
