"""The HTTP/2 connection layer (``opencic.client.connection``) against the real server.

Covers what the SDK relies on: incremental request bodies, request-body flow control,
full duplex (the server answers while the upload is still open), PING with ACK
(B-KA-01), stream resets both ways, GOAWAY and connection loss surfaced to every open
stream. Network faults come from a real loopback TCP proxy (``support.faultproxy``)
between the connection and ``opencic serve``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cic import CONTENT_TYPE, auth_headers, event_body, event_json, read_parts
from support.faultproxy import WINDOW_UPDATE, FaultProxy, settings_of
from support.server import ServerHandle, serving, stop_server

from opencic.client.connection import HTTP2Connection, HTTP2Stream
from opencic.client.errors import ConnectionClosed, PingTimeout, StreamReset

SETTINGS_INITIAL_WINDOW_SIZE = 0x4


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def device_id() -> str:
    return f"conn-{uuid.uuid4().hex[:10]}"


def headers(token: str | None, content_type: str | None = None) -> list[tuple[str, str]]:
    return list(auth_headers(token, content_type).items())


async def eventually(check: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


def server_requests(server: ServerHandle, device: str) -> list[dict[str, Any]]:
    """The server's one-JSON-line-per-request log records of ``device``."""
    out = []
    for line in server.log_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("msg") == "request" and record.get("device") == device:
                out.append(record)
    return out


async def open_downchannel(conn: HTTP2Connection, token: str) -> HTTP2Stream:
    """GET /v1/directives and read up to Clova.Hello."""
    stream = await conn.request("GET", "/v1/directives", headers(token), end_stream=True)
    head = await stream.response(10)
    assert head.status == 200
    seen = b""
    chunks = stream.__aiter__()
    async with asyncio.timeout(10):
        while b'"name":"Hello"' not in seen:
            seen += await chunks.__anext__()
    return stream


def recognize_speech(dialog: str) -> dict[str, Any]:
    payload = {"lang": "en", "profile": "CLOSE_TALK", "format": "AUDIO_L16_RATE_16000_CHANNELS_1"}
    return event_json("SpeechRecognizer", "Recognize", payload, dialog_request_id=dialog)


def test_request_response_and_headers(cic_server: ServerHandle) -> None:
    """A request body sent in pieces; status, headers and body of a real CIC answer."""

    async def main() -> None:
        token = cic_server.create_token(device_id())
        conn = await HTTP2Connection.open(cic_server.host, cic_server.port)
        try:
            downchannel = await open_downchannel(conn, token)
            doc = event_json("TextRecognizer", "Recognize", {"text": "what time is it"},
                             dialog_request_id=str(uuid.uuid4()))
            body = event_body(doc)
            stream = await conn.request("POST", "/v1/events", headers(token, CONTENT_TYPE))
            await stream.send(body[:100])
            await stream.send(body[100:], end_stream=True)
            # Often the server's first spoken answer: it shares the TTS threads with the
            # start-up pre-rendering of fixed phrases, and took over 10 s on a loaded
            # 2-core machine (on either back end). The run's own bound is 30 s.
            head = await stream.response(25)
            assert head.status == 200
            content_type = head.get("Content-Type")
            assert content_type is not None and content_type.startswith("multipart/related")
            parts, closed = read_parts(content_type, await stream.read())
            assert closed
            names = [p.qualified_name for p in parts
                     if p.headers.get("content-type", "").startswith("application/json")]
            assert "SpeechSynthesizer.Speak" in names and "Clova.RenderText" in names
            downchannel.reset()
        finally:
            await conn.aclose()

    run(main())


def test_large_body_respects_flow_control(cic_server: ServerHandle) -> None:
    """An upload far beyond the server's flow-control window gets through whole.

    The client may only send what the server's window allows and must then wait for
    WINDOW_UPDATE: ``h2`` refuses to overrun a window and the server would fail the
    stream with FLOW_CONTROL_ERROR, so a complete 204 proves the waiting works. The
    proxy reads the window the server really advertised off the wire.
    """

    async def main() -> None:
        token = cic_server.create_token(device_id())
        async with FaultProxy(cic_server.host, cic_server.port) as proxy:
            conn = await HTTP2Connection.open(proxy.host, proxy.port)
            try:
                downchannel = await open_downchannel(conn, token)
                # 3.2 MB of audio: over twice the window, within max_event_bytes (4 MiB).
                chunks = [bytes([i % 251]) * 6400 for i in range(500)]
                # Not a Recognize: 100 s of audio is beyond its cap (max_audio_seconds).
                # Binary parts of an event nobody handles are parsed and dropped: 204.
                finished = event_json("SpeechSynthesizer", "SpeechFinished", {"token": "t"})
                body = event_body(finished, *chunks)
                stream = await conn.request("POST", "/v1/events", headers(token, CONTENT_TYPE))
                await asyncio.wait_for(stream.send(body, end_stream=True), 20)
                head = await stream.response(10)
                assert head.status == 204  # parsed whole
                await stream.read()
                downchannel.reset()
            finally:
                await conn.aclose()
            link = proxy.links[0]
            server_frames = link.server_frames()
            window = settings_of(server_frames).get(SETTINGS_INITIAL_WINDOW_SIZE, 65535)
            assert len(body) > 2 * window
            updates = [f for f in server_frames
                       if f.type == WINDOW_UPDATE and f.stream_id == stream.stream_id]
            assert updates, "the server never had to open the window: the test proves nothing"
            post = next(r for r in link.requests() if r.path == "/v1/events")
            assert post.ended and bytes(post.body) == body

    run(main())


def test_full_duplex_answer_while_the_upload_is_open(cic_server: ServerHandle) -> None:
    """granian answers 401 at once while the request body still streams, then tells the
    client to stop uploading (RST_STREAM NO_ERROR, RFC 9113 8.1); the answer stays
    readable and the connection usable."""

    async def main() -> None:
        conn = await HTTP2Connection.open(cic_server.host, cic_server.port)
        try:
            stream = await conn.request("POST", "/v1/events", headers("not-a-token", CONTENT_TYPE))
            body = event_body(recognize_speech(str(uuid.uuid4())), b"\x00" * 6400)
            await stream.send(body[:200])  # END_STREAM not sent: the upload is open
            head = await stream.response(10)
            assert head.status == 401
            content_type = head.get("content-type")
            assert content_type is not None
            parts, closed = read_parts(content_type, await stream.read())
            assert closed and len(parts) == 1
            assert parts[0].qualified_name == "System.Exception"
            assert parts[0].directive["payload"]["code"] == 401
            await eventually(lambda: stream.local_closed, 5)  # the server's RST_STREAM
            with pytest.raises(StreamReset) as info:
                await stream.send(body[200:], end_stream=True)
            assert info.value.error_code == 0
            assert not conn.is_closed
            ping = await conn.request("GET", "/ping", headers(None), end_stream=True)
            assert (await ping.response(5)).status == 204
        finally:
            await conn.aclose()

    run(main())


def test_ping_ack_and_timeout(cic_server: ServerHandle) -> None:
    """B-KA-01: the server ACKs PING; when the path goes dark the PING times out."""

    async def main() -> None:
        async with FaultProxy(cic_server.host, cic_server.port) as proxy:
            conn = await HTTP2Connection.open(proxy.host, proxy.port)
            try:
                rtt = await conn.ping(5)
                assert 0 <= rtt < 5
                proxy.pause()
                with pytest.raises(PingTimeout):
                    await conn.ping(0.3)
                proxy.resume()
                assert await conn.ping(5) < 5  # the connection survived the stall
            finally:
                await conn.aclose()

    run(main())


def test_client_reset_ends_one_stream_and_keeps_the_connection(cic_server: ServerHandle) -> None:
    """RST_STREAM from the client: that stream fails, the server lets go of it, and the
    connection carries on (a new downchannel on it works)."""

    async def main() -> None:
        device = device_id()
        token = cic_server.create_token(device)
        conn = await HTTP2Connection.open(cic_server.host, cic_server.port)
        try:
            first = await open_downchannel(conn, token)
            first.reset()
            with pytest.raises(StreamReset):
                await first.read()
            assert await conn.ping(5) >= 0
            # The server saw the reset: it finished (and logged) that request.
            await eventually(lambda: [r["path"] for r in server_requests(cic_server, device)]
                             == ["/v1/directives"], 10)
            second = await open_downchannel(conn, token)
            assert not second.remote_closed and not conn.is_closed
            second.reset()
        finally:
            await conn.aclose()

    run(main())


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerHandle]:
    with serving(tmp_path / "server") as handle:
        yield handle


def test_server_shutdown_ends_open_streams_and_the_connection(own_server: ServerHandle) -> None:
    """Stopping the real server (GOAWAY): an upload that can never finish fails with
    ConnectionClosed; the downchannel ends (granian sometimes lets the app close it
    first, cleanly); the connection is closed and refuses new streams."""

    async def main() -> None:
        token = own_server.create_token(device_id())
        conn = await HTTP2Connection.open(own_server.host, own_server.port)
        downchannel = await open_downchannel(conn, token)
        upload = await conn.request("POST", "/v1/events", headers(token, CONTENT_TYPE))
        await upload.send(event_body(recognize_speech(str(uuid.uuid4())))[:300])
        await asyncio.to_thread(stop_server, own_server)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(upload.read(), 10)
        try:
            await asyncio.wait_for(downchannel.read(), 10)
        except ConnectionClosed:
            pass
        assert downchannel.remote_closed
        reason = await asyncio.wait_for(conn.wait_closed(), 5)
        assert isinstance(reason, ConnectionClosed) and conn.is_closed
        assert "GOAWAY" in str(reason) and reason.retryable  # graceful stop, not an error
        with pytest.raises(ConnectionClosed):
            await conn.request("GET", "/ping", end_stream=True)
        await conn.aclose()

    run(main())


def test_connection_loss_fails_every_open_stream(cic_server: ServerHandle) -> None:
    async def main() -> None:
        token = cic_server.create_token(device_id())
        async with FaultProxy(cic_server.host, cic_server.port) as proxy:
            conn = await HTTP2Connection.open(proxy.host, proxy.port)
            downchannel = await open_downchannel(conn, token)
            uploads = []
            for _ in range(2):  # events whose bodies are still streaming
                upload = await conn.request("POST", "/v1/events", headers(token, CONTENT_TYPE))
                await upload.send(event_body(recognize_speech(str(uuid.uuid4())))[:300])
                uploads.append(upload)
            await eventually(lambda: sum(r.path == "/v1/events"
                                         for r in proxy.links[0].requests()) == 2, 5)
            proxy.cut()  # network loss
            for stream in (downchannel, *uploads):
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(stream.read(), 5)
            reason = await asyncio.wait_for(conn.wait_closed(), 5)
            assert isinstance(reason, ConnectionClosed)
            with pytest.raises(ConnectionClosed):
                await conn.request("GET", "/ping", end_stream=True)
            await conn.aclose()

    run(main())

