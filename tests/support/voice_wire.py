"""Voice requests over a raw h2 connection, as a device sends them (B-AU-02).

A raw h2 client streams capture PCM in 200 ms parts, watching the downchannel between
parts, so a test sees exactly when StopCapture (and any interim directive) arrives
relative to its own upload (design.md: test full duplex with raw h2).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from opencic.speech.audio import CAPTURE_FORMAT, CHUNK_BYTES, iter_chunks
from support.cic import (
    CONTENT_TYPE,
    auth_headers,
    close,
    event_json,
    part,
    read_parts,
)
from support.rawh2 import RawH2

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
    # Every directive the downchannel brought during the request, in arrival order,
    # with the audio parts sent when the client saw it.
    downchannel: list[dict[str, Any]] = field(default_factory=list)
    downchannel_parts: list[int] = field(default_factory=list)


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
        arrived = _downchannel(client, dc_sid)[seen:]
        for d in arrived[len(result.downchannel):]:
            result.downchannel.append(d)
            result.downchannel_parts.append(result.parts_sent)
        if result.stop_capture is not None:
            return
        for d in arrived:
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
