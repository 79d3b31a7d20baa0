"""Audio sources for ``SpeechRecognizer.Recognize``: what a device's microphone would send.

A source is an async iterator of capture-format PCM (16 kHz, 16-bit little-endian, mono,
B-AU-01) in 200 ms parts (B-AU-02). :func:`pcm_source` paces raw PCM like a live
microphone (one part every 200 ms, or ``speed`` times faster; ``speed=0`` sends as fast
as the connection takes it); :func:`wav_source` reads any PCM WAV file (any rate, any
channel count) and converts it first. The upload stops at StopCapture (B-SR-02): the
SDK stops pulling parts, so a paced source never sends what the user did not say yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from .models import AUDIO_CHUNK_BYTES

CHUNK_SECONDS = 0.2  # one part per 200 ms of audio (B-AU-02)


async def pcm_source(
    pcm: bytes, *, speed: float = 1.0, chunk_bytes: int = AUDIO_CHUNK_BYTES
) -> AsyncIterator[bytes]:
    """``pcm`` (capture format) in 200 ms parts, part *n* no earlier than *n* × 200 ms /
    ``speed`` after the first; ``speed <= 0``: no pacing at all."""
    if len(pcm) % 2:
        raise ValueError("capture PCM must be whole 16-bit samples (an even byte count)")
    loop = asyncio.get_running_loop()
    started = loop.time()
    interval = chunk_bytes / AUDIO_CHUNK_BYTES * CHUNK_SECONDS / speed if speed > 0 else 0.0
    for index, start in enumerate(range(0, len(pcm), chunk_bytes)):
        if interval:
            delay = started + index * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        yield pcm[start : start + chunk_bytes]


def read_wav_pcm(path: str | Path) -> bytes:
    """Any PCM WAV file as capture-format PCM (resampled, channels averaged)."""
    from opencic.speech.audio import read_wav_as_capture_pcm  # numpy: only when used

    return read_wav_as_capture_pcm(Path(path))


async def wav_source(path: str | Path, *, speed: float = 1.0) -> AsyncIterator[bytes]:
    """:func:`pcm_source` over a WAV file, converted to the capture format first."""
    pcm = await asyncio.get_running_loop().run_in_executor(None, read_wav_pcm, path)
    async for part in pcm_source(pcm, speed=speed):
        yield part
