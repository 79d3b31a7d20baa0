"""Voice requests end to end: real sockets, the real server, real VAD and ASR models.

Speech is synthesised at test time with the project's Piper voice, resampled to 16 kHz
and followed by silence; a raw h2 client (support/voice_wire.py) streams it in 200 ms
parts at ~3x real time, watching the downchannel between parts, so the test sees exactly
when StopCapture arrives relative to its own upload (design.md: test full duplex with
raw h2).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.cic import (
    CONTENT_TYPE,
    auth_headers,
    event_body,
    event_json,
    exception_of,
    read_parts,
    with_device,
)
from support.rawh2 import RawH2
from support.voice import utterance
from support.voice_wire import (
    VoiceResult,
    names,
    recognize_json,
    run,
    stream_voice,
    voice_log_lines,
)

from opencic.client import CICClient
from opencic.speech.audio import CHUNK_BYTES, iter_chunks, resample_pcm16, silence

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
    "lang": ({"lang": "ja"}, _speech_parts(), "lang"),
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
    total_ms = len(pcm) / 32  # audio in the file

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
    # The rest of the file was never sent: the server received (processed + ignored after
    # StopCapture) well under the file's ~5 s. Counted in audio, not wall time, which
    # also holds the answer's decode and TTS (slow on a loaded machine).
    dialog = response.directives[0].dialog_request_id
    line = next(x for x in voice_log_lines(cic_server) if x.get("dialogRequestId") == dialog)
    received_ms = line["audio_ms"] + line["ignored_audio_ms"]
    assert received_ms < total_ms - 1000, (received_ms, total_ms)


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

