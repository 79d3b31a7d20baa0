"""Voice requests end to end: real sockets, the real server, real VAD and ASR models.

Speech is synthesised at test time with the project's Piper voice, resampled to 16 kHz
and followed by silence; a raw h2 client streams it in 200 ms parts at ~3x real time,
watching the downchannel between parts, so the test sees exactly when StopCapture
arrives relative to its own upload (design.md: test full duplex with raw h2).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.cic import (
    CONTENT_TYPE,
    auth_headers,
    close,
    event_body,
    event_json,
    exception_of,
    open_downchannel,
    part,
    read_parts,
)
from support.rawh2 import RawH2
from support.voice import utterance

from opencic.client import CICClient
from opencic.speech.audio import CAPTURE_FORMAT, CHUNK_BYTES, iter_chunks, resample_pcm16, silence

PART_INTERVAL = 0.06  # seconds between 200 ms parts: ~3x real time


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def recognize_json(dialog: str, **payload: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"lang": "en", "profile": "CLOSE_TALK", "format": CAPTURE_FORMAT}
    body.update(payload)
    body = {k: v for k, v in body.items() if v is not None}
    return event_json("SpeechRecognizer", "Recognize", body, dialog)


@dataclass
class VoiceResult:
    status: int
    directives: list[dict[str, Any]]
    response: Any
    stop_capture: dict[str, Any] | None = None
    stop_capture_part: int | None = None  # parts sent when StopCapture was read
    upload_open_at_stop: bool = False
    parts_sent: int = 0
    stop_capture_at: float | None = None
    answer_at: float | None = None
    downchannel_names: list[str] = field(default_factory=list)


def _downchannel(client: RawH2, sid: int) -> list[dict[str, Any]]:
    st = client.streams[sid]
    parts, _ = read_parts(st.headers["content-type"], bytes(st.body), st.ended)
    return [p.directive for p in parts]


async def stream_voice(
    client: RawH2,
    token: str,
    dc_sid: int,
    pcm: bytes,
    dialog: str,
    *,
    stop_on_capture: bool = False,
    interval: float = PART_INTERVAL,
    **payload: Any,
) -> VoiceResult:
    """One Recognize: metadata part, then 200 ms audio parts every ``interval`` seconds,
    checking the downchannel for StopCapture before each part."""
    seen = len(_downchannel(client, dc_sid))
    sid = await client.start("POST", "/v1/events", auth_headers(token, CONTENT_TYPE))
    await client.send(sid, part(json.dumps(recognize_json(dialog, **payload)).encode()))
    result = VoiceResult(0, [], None)

    def check_stop() -> None:
        if result.stop_capture is not None:
            return
        for d in _downchannel(client, dc_sid)[seen:]:
            if d["header"]["name"] == "StopCapture":
                result.stop_capture = d
                result.stop_capture_part = result.parts_sent
                result.stop_capture_at = time.perf_counter()
                result.upload_open_at_stop = not client.streams[sid].ended

    for chunk in iter_chunks(pcm, CHUNK_BYTES):
        check_stop()
        if result.stop_capture is not None and stop_on_capture:
            break  # B-SR-02: stop recording at once
        if client.streams[sid].ended:
            break  # the server answered early (an error)
        await client.send(sid, part(chunk, "application/octet-stream", "audio"))
        result.parts_sent += 1
        await asyncio.sleep(interval)
    check_stop()
    if not client.streams[sid].ended:
        await client.send(sid, close(), end=True)
    st = await client.wait(sid, lambda s: s.status is not None or s.ended, 30)
    result.answer_at = time.perf_counter()
    resp = await client.response(sid)
    check_stop()
    result.status = resp.status
    result.response = resp
    if resp.status == 200:
        parts, closed = read_parts(resp.headers["content-type"], resp.body)
        assert closed
        result.directives = [p.directive for p in parts if "json" in p.headers.get("content-type", "")]
    assert st is not None
    result.downchannel_names = [d["header"]["name"] for d in _downchannel(client, dc_sid)[seen:]]
    return result


async def with_device(server: Any, fn: Any) -> Any:
    token = server.create_token(f"voice-{uuid.uuid4().hex[:10]}")
    client = await server.connect()
    try:
        sid = await open_downchannel(client, token)
        return await fn(client, token, sid)
    finally:
        await client.close()


def names(directives: list[dict[str, Any]]) -> list[str]:
    return [f"{d['header']['namespace']}.{d['header']['name']}" for d in directives]


def voice_log_lines(server: Any) -> list[dict[str, Any]]:
    out = []
    for line in server.log_text().splitlines():
        if '"voice request"' in line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


# --------------------------------------------------------------------------- happy paths


def test_stop_capture_arrives_on_the_downchannel_while_uploading_then_the_answer(
    cic_server: Any,
) -> None:
    """B-SR-01: StopCapture on the downchannel with the Recognize's dialogRequestId,
    before the upload ends (2 s of silence follow the speech); the device keeps sending
    (ignored, B-AU-05); the response answers the spoken question (B-DI-07)."""
    pcm = utterance("what time is it", trail_ms=2000)
    total_parts = -(-len(pcm) // CHUNK_BYTES)
    dialog = str(uuid.uuid4())

    async def go(client: RawH2, token: str, sid: int) -> VoiceResult:
        return await stream_voice(client, token, sid, pcm, dialog)

    result = run(with_device(cic_server, go))
    assert result.stop_capture is not None, "no StopCapture on the downchannel"
    assert result.upload_open_at_stop
    assert result.stop_capture_part is not None and result.stop_capture_part < total_parts - 3
    assert result.stop_capture["header"]["dialogRequestId"] == dialog
    assert result.stop_capture["payload"] == {}
    assert result.parts_sent == total_parts  # this device kept sending: fine
    assert result.status == 200
    assert names(result.directives) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
    assert result.directives[1]["payload"]["text"].startswith("It's")
    assert all(d["header"]["dialogRequestId"] == dialog for d in result.directives)
    # The MP3 travels with the Speak.
    cid = result.directives[0]["payload"]["url"][4:]
    parts, _ = read_parts(result.response.headers["content-type"], result.response.body)
    assert any(p.headers.get("content-id") == f"<{cid}>" and len(p.body) > 1000 for p in parts)
    # Logged per request: end of speech in the audio, StopCapture, first answer byte.
    logs = [line for line in voice_log_lines(cic_server) if line.get("dialogRequestId") == dialog]
    assert logs, "no voice request log line"
    line = logs[0]
    assert line["outcome"] == "SpeechEnded" and line["speech_end_ms"] < line["endpoint_ms"]
    assert line["stop_capture_after_ms"] is not None and line["stop_capture_after_ms"] < 250
    assert line["first_answer_byte_after_ms"] >= line["stop_capture_after_ms"]


def test_volume_by_voice_with_a_device_that_stops_at_stop_capture(cic_server: Any) -> None:
    dialog = str(uuid.uuid4())
    pcm = utterance("set the volume to five", trail_ms=2500)

    async def go(client: RawH2, token: str, sid: int) -> VoiceResult:
        return await stream_voice(client, token, sid, pcm, dialog, stop_on_capture=True)

    result = run(with_device(cic_server, go))
    assert result.stop_capture is not None and result.upload_open_at_stop
    assert result.parts_sent < -(-len(pcm) // CHUNK_BYTES)
    assert result.status == 200
    assert names(result.directives) == ["DeviceControl.SetValue"]
    assert result.directives[0]["payload"] == {"target": "volume", "value": "5"}
    assert result.directives[0]["header"]["dialogRequestId"] == dialog


def test_silence_only_gets_a_polite_apology(cic_server: Any) -> None:
    """Nobody speaks: after the no-speech timeout capture stops and we say so."""
    dialog = str(uuid.uuid4())

    async def go(client: RawH2, token: str, sid: int) -> VoiceResult:
        return await stream_voice(client, token, sid, silence(6000), dialog,
                                  stop_on_capture=True, interval=0.02)

    result = run(with_device(cic_server, go))
    assert result.stop_capture is not None
    assert result.status == 200
    assert names(result.directives) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
    assert result.directives[1]["payload"]["text"] == "Sorry, I didn't hear anything."


# --------------------------------------------------------------------------- bad audio


def _speech_parts(ms: float = 400) -> list[bytes]:
    return list(iter_chunks(silence(ms), CHUNK_BYTES))


BAD_REQUESTS: dict[str, tuple[dict[str, Any], list[bytes], str]] = {
    "format": ({"format": "AUDIO_L16_RATE_8000_CHANNELS_1"}, _speech_parts(), "format"),
    "lang": ({"lang": "ko"}, _speech_parts(), "lang"),
    "odd-bytes": ({}, [b"\x00" * 6399, b"\x00" * 6400], "odd"),
    "no-audio": ({}, [], "no audio"),
    "too-long": ({}, list(iter_chunks(silence(31_000), CHUNK_BYTES)), "longer than"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_audio_is_a_400_and_the_downchannel_survives(cic_server: Any, case: str) -> None:
    payload, audio, words = BAD_REQUESTS[case]
    dialog = str(uuid.uuid4())

    async def go(client: RawH2, token: str, sid: int) -> None:
        body = event_body(recognize_json(dialog, **payload), *audio)
        resp = await client.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
        assert resp.status == 400, resp.body[:300]
        description = exception_of(resp)["description"]
        assert words in description, description
        # The connection and its downchannel are still there: a text request works.
        assert not client.streams[sid].ended
        ok = event_body(event_json("TextRecognizer", "Recognize", {"text": "what time is it"},
                                   str(uuid.uuid4())))
        again = await client.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), ok)
        assert again.status == 200
        assert not client.streams[sid].ended

    run(with_device(cic_server, go))


def test_missing_lang_falls_back_to_english(cic_server: Any) -> None:
    """Ambiguity #24: a Recognize without lang is English."""
    dialog = str(uuid.uuid4())

    async def go(client: RawH2, token: str, sid: int) -> VoiceResult:
        return await stream_voice(client, token, sid, utterance("what time is it", trail_ms=900),
                                  dialog, interval=0.02, lang=None)

    result = run(with_device(cic_server, go))
    assert result.status == 200
    assert result.directives[1]["payload"]["text"].startswith("It's")


# --------------------------------------------------------------------------- SDK and CLI


def _write_wav_44k_stereo(path: Path, pcm: bytes) -> None:
    """Capture PCM as a 44.1 kHz stereo WAV: the SDK must convert it back."""
    samples = np.frombuffer(resample_pcm16(pcm, 16_000, 44_100), "<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(44_100)
        wav.writeframes(np.repeat(samples, 2).astype("<i2").tobytes())


def test_sdk_recognize_wav_stops_at_stop_capture(cic_server: Any, tmp_path: Path) -> None:
    """CICClient.recognize_wav paces 200 ms parts and ends the upload at StopCapture."""
    wav_path = tmp_path / "request.wav"
    pcm = utterance("what time is it", trail_ms=4000)
    _write_wav_44k_stereo(wav_path, pcm)
    speed = 2.0
    full = len(pcm) / 32000 / speed  # seconds to send the whole file at this speed

    async def go() -> tuple[Any, float, list[float]]:
        token = cic_server.create_token(f"voice-sdk-{uuid.uuid4().hex[:8]}")
        stops: list[float] = []
        async with CICClient(cic_server.url, token) as client:
            client.on("SpeechRecognizer.StopCapture", lambda item: stops.append(time.perf_counter()))
            started = time.perf_counter()
            response = await client.recognize_wav(wav_path, speed=speed)
            elapsed = time.perf_counter() - started
            await client.wait_idle(5)
            return response, elapsed, [s - started for s in stops]

    response, elapsed, stops = run(go())
    assert response.status == 200
    assert [d.qualified_name for d in response.directives] == [
        "SpeechSynthesizer.Speak", "Clova.RenderText",
    ]
    assert response.directives[1].payload["text"].startswith("It's")
    assert len(stops) == 1 and stops[0] < elapsed
    assert elapsed < full - 1.0, (elapsed, full)  # the rest of the file was never sent


def test_cli_device_wav_prints_timings_and_writes_the_mp3(cic_server: Any, tmp_path: Path) -> None:
    wav_path = tmp_path / "request.wav"
    _write_wav_44k_stereo(wav_path, utterance("what time is it", trail_ms=1500))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "opencic.cli.main", "device", "--server", cic_server.url,
         "--token", cic_server.create_token(f"voice-cli-{uuid.uuid4().hex[:8]}"),
         "--wav", str(wav_path), "--speed", "4", "--out-dir", str(out)],
        capture_output=True, text=True, timeout=90, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    stop = next(line for line in lines if "SpeechRecognizer.StopCapture" in line)
    assert stop.startswith("[+") and "(downchannel)" in stop
    assert any(line.startswith("[+") and "Clova.RenderText" in line and "It's" in line
               for line in lines)
    assert any("response complete: HTTP 200" in line for line in lines)
    assert (out / "speak-1.mp3").stat().st_size > 1000
