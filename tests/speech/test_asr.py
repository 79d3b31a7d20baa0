"""Speech recognition with the real Whisper tiny.en model on speech from our own TTS."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opencic.speech.asr import (
    BUNDLED_WHISPER_SHA256,
    RecognitionSession,
    SpeechRecognizer,
    Transcript,
    UnsupportedLanguageError,
    WhisperRecognizer,
    default_whisper_path,
)
from opencic.speech.audio import CHUNK_BYTES, add_noise, iter_chunks, silence
from opencic.speech.metrics import normalize_text, word_error_rate
from opencic.speech.vad import ModelIntegrityError

MakeUtterance = Callable[..., Any]  # the conftest fixture: (speech, text, ...) -> Utterance


def recognise(recognizer: WhisperRecognizer, pcm: bytes) -> Transcript:
    """Stream ``pcm`` into a session in 200 ms parts, as the server will, then finish."""
    session = recognizer.start("en")
    for part in iter_chunks(pcm, CHUNK_BYTES):
        session.feed(part)
    return session.finish()


def test_default_model_is_the_pinned_tiny_en(whisper: WhisperRecognizer) -> None:
    assert isinstance(whisper, SpeechRecognizer)
    assert whisper.model_path == default_whisper_path()
    assert whisper.expected_sha256 == BUNDLED_WHISPER_SHA256
    assert whisper.languages == frozenset({"en"})  # tiny.en is English-only
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_commands_are_recognised(
    whisper: WhisperRecognizer, spoken_commands: dict[str, bytes], make_utterance: MakeUtterance
) -> None:
    results: list[tuple[str, Transcript]] = []
    for text, speech in spoken_commands.items():
        # What the server hands the recogniser: a little lead-in and the 0.6 s tail the
        # end-of-speech rule waits for.
        utterance = make_utterance(speech, text, lead_ms=300, trail_ms=600)
        results.append((text, recognise(whisper, utterance.pcm)))
    misses = [
        (text, t.text) for text, t in results if normalize_text(t.text) != normalize_text(text)
    ]
    assert len(misses) <= len(results) // 10, misses  # >= 90 % exactly right
    assert word_error_rate((text, t.text) for text, t in results) <= 0.1
    for text, transcript in results:
        assert transcript.language == "en"
        assert 0.0 < transcript.confidence <= 1.0
        assert transcript.decode_ms > 0.0
        assert transcript.audio_ms == pytest.approx(
            900 + len(spoken_commands[text]) / 32.0, abs=0.1
        )


def test_commands_in_noise_are_mostly_recognised(
    whisper: WhisperRecognizer, spoken_commands: dict[str, bytes], make_utterance: MakeUtterance
) -> None:
    pairs = []
    for index, (text, speech) in enumerate(list(spoken_commands.items())[:6]):
        utterance = make_utterance(speech, text, lead_ms=300, trail_ms=600, snr_db=10, seed=index)
        pairs.append((text, recognise(whisper, utterance.pcm).text))
    assert word_error_rate(pairs) <= 0.25, pairs


def test_partials_decode_the_audio_so_far_and_give_way_to_finals(
    spoken_commands: dict[str, bytes],
) -> None:
    # Own recogniser (same files, so the model load is from the OS cache) to set the interval.
    recognizer = WhisperRecognizer(partial_interval_ms=800)
    try:
        speech = silence(300) + spoken_commands["what's the weather like tomorrow"] + silence(600)
        session = recognizer.start("en")
        assert session.partial_interval_ms == 800  # what the PartialScheduler reads
        assert session.partial() == ""  # nothing fed yet: no decode at all
        half = len(speech) // 2 & ~1
        session.feed(speech[:half])
        first = session.partial()
        session.feed(speech[half:])
        second = session.partial()
        assert first and second, (first, second)
        assert len(normalize_text(first)) < len(normalize_text(second))
        assert normalize_text(second) == "whats the weather like tomorrow"
        # While another decode is claimed (a final queued or running), a partial
        # declines at once instead of queueing ahead of it.
        assert recognizer._claim(partial=False)
        try:
            assert recognizer.busy
            assert session.partial() is None
            assert asyncio.run(session.apartial()) is None
        finally:
            recognizer._release()
        final = session.finish()
        assert normalize_text(final.text) == "whats the weather like tomorrow"
        assert session.partial() == final.text  # after the end, partial is the final
        assert session.finish() is final  # decoded once
        session.feed(speech)  # audio after the end is ignored (B-AU-05)
        assert session.finish() is final
        assert not recognizer.busy
    finally:
        recognizer.close()


def test_a_queued_final_makes_partials_decline(
    whisper: WhisperRecognizer, spoken_commands: dict[str, bytes]
) -> None:
    """The claim is made when the final is queued, before a worker thread takes it."""

    async def scenario() -> tuple[str | None, str | None]:
        previewed, other = whisper.start("en"), whisper.start("en")
        for session in (previewed, other):
            session.feed(silence(300) + spoken_commands["pause the music"] + silence(300))
        final = asyncio.create_task(other.afinish())
        await asyncio.sleep(0)  # the task claims the engine on its first step
        declined = await previewed.apartial()
        await final
        return declined, await previewed.apartial()

    declined, later = asyncio.run(scenario())
    assert declined is None
    assert later is not None and normalize_text(later) == "pause the music"
    assert not whisper.busy


def test_async_wrappers_keep_the_event_loop_free(
    whisper: WhisperRecognizer, spoken_commands: dict[str, bytes]
) -> None:
    async def scenario() -> tuple[Transcript, str, int]:
        session = whisper.start("en")
        assert isinstance(session, RecognitionSession)
        for part in iter_chunks(
            silence(300) + spoken_commands["turn the volume up"] + silence(600)
        ):
            session.feed(part)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        partial = await session.apartial()
        final = await session.afinish()
        task.cancel()
        return final, partial, ticks

    final, partial, ticks = asyncio.run(scenario())
    assert normalize_text(final.text) == "turn the volume up"
    assert normalize_text(partial) == "turn the volume up"
    # Two decodes of ~0.3 s each ran in worker threads while the loop went on ticking.
    assert ticks >= 5


def test_concurrent_sessions_share_one_model(
    whisper: WhisperRecognizer, spoken_commands: dict[str, bytes]
) -> None:
    texts = ["pause the music", "cancel my alarm", "turn off the lights", "what time is it"]
    audio = [silence(300) + spoken_commands[text] + silence(300) for text in texts]
    one_by_one = [whisper.transcribe(pcm).text for pcm in audio]

    async def scenario() -> list[Transcript]:
        sessions = [whisper.start("en") for _ in texts]
        for session, pcm in zip(sessions, audio, strict=True):
            session.feed(pcm)
        return list(await asyncio.gather(*(s.afinish() for s in sessions)))

    together = [t.text for t in asyncio.run(scenario())]
    assert together == one_by_one  # no cross-talk between sessions decoding at once
    assert [normalize_text(t) for t in together] == texts


def test_silence_and_noise_give_no_text(whisper: WhisperRecognizer) -> None:
    assert recognise(whisper, silence(2000)).text == ""
    assert recognise(whisper, b"").text == ""
    hiss = add_noise(silence(2000), 0.0, seed=5, reference=b"\x48\x01" * 100)
    assert recognise(whisper, hiss).text == ""


def test_unsupported_language_is_a_clear_error(whisper: WhisperRecognizer) -> None:
    with pytest.raises(UnsupportedLanguageError, match="'ko'.*supported: en"):
        whisper.start("ko")
    assert whisper.start("en-US").language == "en-US"


def _model_copy(tmp_path: Path, *, tamper: str | None = None, skip: str | None = None) -> Path:
    """The bundled model's files in a directory of our own: symlinked (model.bin is 75 MB),
    except a tampered file, which is a modified copy."""
    own = tmp_path / "my-whisper"
    own.mkdir()
    for source in default_whisper_path().iterdir():
        if source.name == skip or not source.is_file():
            continue
        if source.name == tamper:
            (own / source.name).write_bytes(source.read_bytes() + b"\n")
        else:
            (own / source.name).symlink_to(source)
    return own


def test_sha256_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    own = _model_copy(tmp_path, tamper="config.json")
    recognizer = WhisperRecognizer(own, sha256=BUNDLED_WHISPER_SHA256)
    with pytest.raises(ModelIntegrityError, match=r"SHA-256 mismatch .*config\.json.*expected"):
        recognizer.load()
    assert not recognizer.loaded


def test_a_model_without_its_tokenizer_is_refused(tmp_path: Path) -> None:
    # faster-whisper would fetch the tokenizer from the hub: refuse before it can.
    recognizer = WhisperRecognizer(_model_copy(tmp_path, skip="tokenizer.json"))
    with pytest.raises(ModelIntegrityError, match="tokenizer.json"):
        recognizer.load()
    with pytest.raises(ModelIntegrityError, match="not found"):
        WhisperRecognizer(tmp_path / "nowhere").load()


def test_model_path_override(tmp_path: Path, spoken_commands: dict[str, bytes]) -> None:
    own = _model_copy(tmp_path)
    recognizer = WhisperRecognizer(own)  # a user's own model: no pinned hashes
    try:
        assert recognizer.model_path == own and recognizer.expected_sha256 is None
        transcript = recognizer.transcribe(
            silence(300) + spoken_commands["what time is it"] + silence(300)
        )
        assert normalize_text(transcript.text) == "what time is it"
    finally:
        recognizer.close()
    # ...and with hashes given for it, they are checked.
    checked = WhisperRecognizer(own, sha256={"vocabulary.txt": "0" * 64})
    with pytest.raises(ModelIntegrityError, match="vocabulary.txt"):
        checked.load()
    shutil.rmtree(own)
