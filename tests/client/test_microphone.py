"""The microphone source (client/microphone.py) on miniaudio's real capture path, with
its null backend (a capture device that records silence: the machine has no
microphone), and the clear refusal when no device can be opened."""

from __future__ import annotations

import asyncio
import time

import miniaudio
import pytest

from opencic.client.microphone import MicrophoneUnavailable, capture_devices, microphone_source

NULL = [miniaudio.Backend.NULL]


def test_parts_of_200_ms_in_real_time_until_the_limit() -> None:
    async def main() -> tuple[list[bytes], float]:
        started = time.monotonic()
        parts = [p async for p in microphone_source(max_seconds=1.0, backends=NULL)]
        return parts, time.monotonic() - started

    parts, took = asyncio.run(main())
    assert [len(p) for p in parts] == [6400] * 5  # B-AU-02: 200 ms of 16 kHz L16 mono
    assert 0.8 < took < 3.0  # paced by the device, not read ahead


def test_stopping_early_closes_the_device() -> None:
    async def main() -> int:
        source = microphone_source(max_seconds=30.0, backends=NULL)
        got = 0
        async for _ in source:
            got += 1
            if got == 2:
                break  # what the SDK does at StopCapture (B-SR-02)
        await source.aclose()
        return got

    assert asyncio.run(main()) == 2
    assert "NULL Capture Device" in capture_devices(NULL)


def test_an_unknown_device_is_refused_with_the_names_found() -> None:
    async def main() -> None:
        async for _ in microphone_source(device="no such mic", backends=NULL):
            pass

    with pytest.raises(MicrophoneUnavailable, match="no capture device named 'no such mic'"):
        asyncio.run(main())


def test_a_silent_microphone_request_end_to_end(cic_server: object) -> None:
    """The SDK streams the (silent) microphone until the server's StopCapture, which
    comes after the no-speech timeout; the answer says nothing was heard."""
    from opencic.client import CICClient

    server = cic_server
    token = server.create_token(f"mic-{time.monotonic_ns()}")  # type: ignore[attr-defined]

    async def main() -> tuple[list[str], str]:
        async with CICClient(server.url, token) as client:  # type: ignore[attr-defined]
            response = await client.recognize_speech(
                microphone_source(max_seconds=20.0, backends=NULL))
            texts = [d.payload.get("text", "") for d in response.directives
                     if d.qualified_name == "Clova.RenderText"]
            return [d.qualified_name for d in response.directives], texts[0] if texts else ""

    names, text = asyncio.run(asyncio.wait_for(main(), 60))
    assert names == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
    assert text == "Sorry, I didn't hear anything."
