"""The microphone as an audio source for ``SpeechRecognizer.Recognize`` (B-AU-01/02).

Capture goes through miniaudio (already a dependency; it finds ALSA, PulseAudio, Core
Audio or WASAPI at run time), asked for 16 kHz 16-bit mono directly, so no conversion
is needed; parts of 200 ms (6,400 bytes) are handed to the SDK as they fill. The SDK
stops pulling at StopCapture (B-SR-02) and the capture device is closed then, so no
audio the user did not mean to send leaves the device.

``max_seconds`` bounds one request (a device that never hears StopCapture must not
record for ever; the server refuses audio beyond its own cap anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator, Sequence
from typing import Any

from .models import AUDIO_CHUNK_BYTES

SAMPLE_RATE = 16_000


class MicrophoneUnavailable(RuntimeError):
    """No capture device could be opened (none attached, no audio system, no access)."""


def capture_devices(backends: Sequence[Any] | None = None) -> list[str]:
    """Names of the capture devices miniaudio can see."""
    import miniaudio  # type: ignore[import-untyped]

    try:
        found = miniaudio.Devices(backends=list(backends) if backends else None).get_captures()
    except miniaudio.MiniaudioError as exc:
        raise MicrophoneUnavailable(f"no audio system to capture from: {exc}") from exc
    return [str(d["name"]) for d in found]


async def microphone_source(
    *, device: str | None = None, max_seconds: float = 15.0,
    backends: Sequence[Any] | None = None, chunk_bytes: int = AUDIO_CHUNK_BYTES,
) -> AsyncIterator[bytes]:
    """Capture-format parts from the microphone (``device``: a name from
    :func:`capture_devices`, default the system's default) until the consumer stops
    pulling or ``max_seconds`` of audio were sent."""
    import miniaudio

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    def collector() -> Generator[None, bytes, None]:
        while True:
            data = yield
            loop.call_soon_threadsafe(queue.put_nowait, bytes(data))

    device_id = None
    if device is not None:
        listing = miniaudio.Devices(backends=list(backends) if backends else None).get_captures()
        matches = [d for d in listing if d["name"] == device]
        if not matches:
            names = ", ".join(repr(d["name"]) for d in listing) or "none"
            raise MicrophoneUnavailable(f"no capture device named {device!r} (found: {names})")
        device_id = matches[0]["id"]
    try:
        capture = miniaudio.CaptureDevice(
            input_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=SAMPLE_RATE,
            buffersize_msec=50, device_id=device_id,
            backends=list(backends) if backends else None, app_name="opencic",
        )
    except miniaudio.MiniaudioError as exc:
        raise MicrophoneUnavailable(f"cannot open a microphone: {exc}") from exc
    generator = collector()
    next(generator)
    try:
        capture.start(generator)
    except miniaudio.MiniaudioError as exc:
        capture.close()
        raise MicrophoneUnavailable(f"cannot start capturing: {exc}") from exc
    limit = int(max_seconds * SAMPLE_RATE) * 2
    sent = 0
    pending = bytearray()
    try:
        while sent < limit:
            pending += await queue.get()
            while len(pending) >= chunk_bytes and sent < limit:
                part, pending = bytes(pending[:chunk_bytes]), pending[chunk_bytes:]
                sent += len(part)
                yield part
    finally:
        with contextlib.suppress(Exception):
            capture.stop()
        capture.close()
