"""TTS, MP3 encoding and the cached synthesizer, with the real Piper voice and LAME."""

from __future__ import annotations

import array
import asyncio
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import miniaudio
import pytest

from opencic.speech import PcmAudio, PiperTextToSpeech, SpeechSynthesizer, TextToSpeech, encode_mp3
from opencic.speech.synthesizer import _ByteBoundedLRU


def rms(pcm: PcmAudio) -> float:
    samples = memoryview(pcm.samples).cast("h")
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


# --------------------------------------------------------------------------- TTS


def test_piper_voice_is_the_bundled_joe_voice(piper_tts: PiperTextToSpeech) -> None:
    assert isinstance(piper_tts, TextToSpeech)
    assert piper_tts.model_path.name == "en_US-joe-medium.onnx"
    assert piper_tts.model_path.is_file() and piper_tts.config_path.is_file()
    assert piper_tts.voice_id == "piper:en_US-joe-medium"
    assert piper_tts.sample_rate == 22050


def test_synthesize_returns_mono_int16_speech(piper_tts: PiperTextToSpeech) -> None:
    pcm = piper_tts.synthesize("It's 11 42 PM.")
    assert pcm.sample_rate == 22050
    assert len(pcm.samples) % 2 == 0
    assert 0.5 < pcm.duration_seconds < 5.0
    assert rms(pcm) > 500  # speech, not silence


def test_sentences_are_joined_with_a_pause(piper_tts: PiperTextToSpeech) -> None:
    # Piper varies durations at random (noise_w), so look for the inserted gap itself:
    # a run of digital silence of at least 0.1 s that one sentence alone never has.
    def longest_silence(pcm: bytes) -> int:
        longest = run = 0
        for sample in array.array("h", pcm):
            run = run + 1 if sample == 0 else 0
            longest = max(longest, run)
        return longest

    one = piper_tts.synthesize("Hello.")
    two = piper_tts.synthesize("Hello. Hello.")
    gap = int(0.1 * two.sample_rate)
    assert longest_silence(two.samples) >= gap
    assert longest_silence(one.samples) < gap


def test_loading_is_lazy_and_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    tts = PiperTextToSpeech(missing)
    assert not tts.loaded
    assert tts.config_path == Path(f"{missing}.json")
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        tts.synthesize("hi")


def test_model_path_override(piper_tts: PiperTextToSpeech) -> None:
    other = PiperTextToSpeech(piper_tts.model_path, piper_tts.config_path, length_scale=1.5)
    assert other.voice_id == "piper:en_US-joe-medium@1.5"  # a different cache key
    slow = other.synthesize("Hello there.").duration_seconds
    assert slow > piper_tts.synthesize("Hello there.").duration_seconds


def test_concurrent_first_use_loads_once_and_is_thread_safe(piper_tts: PiperTextToSpeech) -> None:
    tts = PiperTextToSpeech(piper_tts.model_path)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(tts.synthesize, ["One.", "Two.", "Three.", "Four."]))
    assert all(r.duration_seconds > 0.2 for r in results)
    assert tts.loaded


# --------------------------------------------------------------------------- MP3


def test_mp3_round_trip(piper_tts: PiperTextToSpeech) -> None:
    pcm = piper_tts.synthesize("Today is Monday, November 23rd, 2026.")
    start = time.perf_counter()
    mp3 = encode_mp3(pcm)
    encode_ms = (time.perf_counter() - start) * 1000
    print(f"\nmp3 encode: {encode_ms:.1f} ms for {pcm.duration_seconds:.2f} s of speech")
    decoded = miniaudio.mp3_read_s16(mp3)
    assert decoded.nchannels == 1 and decoded.sample_rate == 22050
    # LAME pads the start and the last frame; never more than a couple of frames.
    assert abs(decoded.duration - pcm.duration_seconds) < 0.15
    # 48 kb/s CBR: the size follows the duration.
    assert len(mp3) == pytest.approx(pcm.duration_seconds * 48000 / 8, rel=0.2)


def test_mp3_bitrate_and_edge_cases() -> None:
    one_second = PcmAudio(b"\x00\x10" * 22050, 22050)
    small, large = encode_mp3(one_second, 32), encode_mp3(one_second, 64)
    assert len(small) < len(large)
    assert encode_mp3(PcmAudio(b"\x00\x10" * 100 + b"\x01", 22050))  # odd byte dropped
    with pytest.raises(ValueError):
        encode_mp3(PcmAudio(b"", 0))


# --------------------------------------------------------------------------- cache


def test_lru_is_bounded_by_bytes() -> None:
    lru = _ByteBoundedLRU(10)
    lru.put(("a", "v"), b"1234")
    lru.put(("b", "v"), b"1234")
    assert lru.get(("a", "v")) == b"1234"  # a is now the most recent
    lru.put(("c", "v"), b"1234")  # 12 bytes > 10: the least recent (b) goes
    assert lru.get(("b", "v")) is None
    assert lru.get(("a", "v")) and lru.get(("c", "v"))
    assert lru.size == 8 and lru.evictions == 1
    lru.put(("big", "v"), b"x" * 11)  # larger than the whole cache: not kept
    assert lru.get(("big", "v")) is None and len(lru) == 2
    lru.put(("a", "v"), b"12")  # replacing adjusts the size
    assert lru.size == 6


def test_synthesizer_caches_and_evicts(piper_tts: PiperTextToSpeech) -> None:
    synth = SpeechSynthesizer(piper_tts, cache_bytes=20_000)
    try:
        first = synth.synthesize_mp3("Good morning.")
        start = time.perf_counter()
        again = synth.synthesize_mp3("Good morning.")
        hit_ms = (time.perf_counter() - start) * 1000
        assert first == again and hit_ms < 50
        for text in ["Good afternoon.", "Good evening.", "Good night.", "See you tomorrow."]:
            synth.synthesize_mp3(text)
        stats = synth.stats()
        assert stats.bytes <= 20_000 and stats.evictions >= 1
        assert synth.cached("Good morning.") is None  # the oldest went first
        assert synth.cached("See you tomorrow.") is not None
        assert stats.hits == 1 and stats.syntheses == 5
    finally:
        synth.close()


def test_cache_key_includes_the_voice(piper_tts: PiperTextToSpeech) -> None:
    a = SpeechSynthesizer(piper_tts)
    b = SpeechSynthesizer(piper_tts, bitrate_kbps=64)
    try:
        assert a.key("Hi.") != b.key("Hi.")
        assert a.key("Hi.")[0] == "Hi."
    finally:
        a.close()
        b.close()


# --------------------------------------------------------------------------- async


def test_speak_mp3_coalesces_and_never_blocks_the_loop(piper_tts: PiperTextToSpeech) -> None:
    synth = SpeechSynthesizer(piper_tts)
    text = (
        "This sentence is long enough to keep the voice busy for a while, "
        "so that a blocked event loop would show. It has two sentences, too."
    )

    async def scenario() -> tuple[list[bytes], float, float]:
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        start = time.perf_counter()
        results = await asyncio.gather(*(synth.speak_mp3(text) for _ in range(5)))
        elapsed = time.perf_counter() - start
        done.set()
        await tick
        return list(results), max(gaps), elapsed

    try:
        results, worst_gap, elapsed = asyncio.run(scenario())
        assert len(set(results)) == 1
        stats = synth.stats()
        assert stats.syntheses == 1 and stats.coalesced == 4
        # Had synthesis run on the loop, one gap would span all of it. Relative to the
        # synthesis time, so a busy machine slows both and the test stays meaningful.
        assert worst_gap < elapsed / 3, (worst_gap, elapsed)
    finally:
        synth.close()


def test_a_cancelled_waiter_does_not_cancel_the_shared_synthesis(
    piper_tts: PiperTextToSpeech,
) -> None:
    synth = SpeechSynthesizer(piper_tts)

    async def scenario() -> bytes:
        first = asyncio.create_task(synth.speak_mp3("Cancel me if you can."))
        second = asyncio.create_task(synth.speak_mp3("Cancel me if you can."))
        await asyncio.sleep(0.01)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    try:
        assert asyncio.run(scenario())
        assert synth.cached("Cancel me if you can.") is not None
    finally:
        synth.close()


def test_errors_reach_every_waiter_and_are_not_cached(tmp_path: Path) -> None:
    synth = SpeechSynthesizer(PiperTextToSpeech(tmp_path / "missing.onnx"))

    async def scenario() -> list[BaseException | bytes]:
        return await asyncio.gather(
            *(synth.speak_mp3("x") for _ in range(3)), return_exceptions=True
        )

    try:
        results = asyncio.run(scenario())
        assert all(isinstance(r, FileNotFoundError) for r in results)
        assert synth.stats().entries == 0
        with pytest.raises(FileNotFoundError):  # tried again, not a remembered failure
            synth.synthesize_mp3("x")
    finally:
        synth.close()


def test_threads_share_one_synthesis(piper_tts: PiperTextToSpeech) -> None:
    synth = SpeechSynthesizer(piper_tts)
    text = "Threads and coroutines, together."
    barrier = threading.Barrier(3)

    def from_thread() -> bytes:
        barrier.wait()
        return synth.synthesize_mp3(text)

    try:
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda _: from_thread(), range(3)))
        assert len(set(results)) == 1
        assert synth.stats().syntheses == 1
    finally:
        synth.close()


def test_short_answer_timings(piper_tts: PiperTextToSpeech) -> None:
    """Reports the figures of the speech path (printed with -s); loose bounds only."""
    answers = [
        "It's 11 42 PM.",
        "Hello! How can I help you?",
        "Today is Monday, November 23rd, 2026.",
        "The volume is already at the maximum.",
        "Good evening! How can I help you?",
    ]
    tts_ms, mp3_ms = [], []
    for text in answers:
        start = time.perf_counter()
        pcm = piper_tts.synthesize(text)
        tts_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        encode_mp3(pcm)
        mp3_ms.append((time.perf_counter() - start) * 1000)
    print(
        f"\nTTS median {statistics.median(tts_ms):.0f} ms, "
        f"MP3 median {statistics.median(mp3_ms):.1f} ms per short answer"
    )
    assert statistics.median(tts_ms) < 2000


def test_warm_up_loads_the_voice_and_prerenders(piper_tts: PiperTextToSpeech) -> None:
    fresh = PiperTextToSpeech(piper_tts.model_path)
    synth = SpeechSynthesizer(fresh)
    try:
        asyncio.run(synth.warm_up(["Ready when you are."]))
        assert fresh.loaded and synth.cached("Ready when you are.") is not None
        synth.warm_up_blocking(["Ready when you are.", "Still here."])
        assert synth.cached("Still here.") is not None
        assert synth.stats().syntheses == 2
    finally:
        synth.close()


def test_a_closed_synthesizer_fails_fast(piper_tts: PiperTextToSpeech) -> None:
    synth = SpeechSynthesizer(piper_tts)
    synth.close()

    async def twice() -> None:
        for _ in range(2):  # the second call must not join a never-finished first one
            with pytest.raises(RuntimeError):
                await asyncio.wait_for(synth.speak_mp3("Too late."), 5)

    asyncio.run(twice())
