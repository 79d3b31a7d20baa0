"""What CIC needs from the HTTP/2 stack, checked on each server we support:
TLS with ALPN h2 (TLS 1.2 allowed), h2c prior knowledge, PING, an answer that starts
while the request body is still streaming, connections that outlive 1000 requests,
and an early answer that does not take the device's downchannel down."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cic import (
    CONTENT_TYPE,
    auth_headers,
    event_body,
    event_json,
    exception_of,
    part,
    read_parts,
)
from support.rawh2 import RawH2
from support.server import ServerHandle, serving, start_server, stop_server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with serving(tmp_path_factory.mktemp("tls"), tls=True) as handle:
        yield handle


@pytest.fixture(scope="module")
def hypercorn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with serving(tmp_path_factory.mktemp("hypercorn"), server="hypercorn") as handle:
        yield handle


async def _downchannel(client: RawH2, token: str) -> int:
    sid = await client.start("GET", "/v1/directives", auth_headers(token), end=True)
    await client.wait(sid, lambda s: s.status is not None and (s.ended or b"Hello" in s.body))
    assert client.streams[sid].status == 200
    return sid


async def _text_round_trip(client: RawH2, token: str) -> list[str]:
    body = event_body(event_json("TextRecognizer", "Recognize", {"text": "hello"}, str(uuid.uuid4())))
    resp = await client.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
    assert resp.status == 200, resp.body[:200]
    parts, closed = read_parts(resp.headers["content-type"], resp.body)
    assert closed
    return [p.qualified_name for p in parts if p.headers.get("content-type", "").startswith("application/json")]


def test_tls_self_signed_cert_alpn_h2(tls_server: ServerHandle) -> None:
    """B-CN-01: https with ALPN h2; the cert was generated into the data dir on first run."""
    key = (tls_server.data_dir / "tls" / "key.pem").read_text()
    assert "BEGIN PRIVATE KEY" in key  # PKCS#8, which granian requires
    assert (tls_server.data_dir / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    token = tls_server.create_token(f"tls-{uuid.uuid4().hex[:8]}")

    async def go() -> None:
        client = await tls_server.connect()
        try:
            assert client.alpn == "h2"
            await _downchannel(client, token)
            assert await _text_round_trip(client, token) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
            await client.ping()
        finally:
            await client.close()

    asyncio.run(go())


def test_tls_1_2_clients_are_accepted(tls_server: ServerHandle) -> None:
    """granian defaults to TLS 1.3 minimum; devices in the field may only speak 1.2."""
    async def go() -> None:
        ctx = ssl.create_default_context(cafile=tls_server.cafile)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["h2"])
        _, writer = await asyncio.open_connection(tls_server.host, tls_server.port, ssl=ctx, server_hostname="127.0.0.1")
        obj = writer.get_extra_info("ssl_object")
        assert obj.version() == "TLSv1.2" and obj.selected_alpn_protocol() == "h2"
        writer.close()

    asyncio.run(go())


def test_granian_answers_while_the_request_body_still_streams(cic_server: ServerHandle) -> None:
    """Full duplex: a 401 reaches the device while its upload is still open, and only
    that stream ends; the downchannel on the same connection stays up."""
    token = cic_server.create_token(f"fd-{uuid.uuid4().hex[:8]}")

    async def go() -> None:
        client = await cic_server.connect()
        try:
            down = await _downchannel(client, token)
            sid = await client.start("POST", "/v1/events", auth_headers("wrong-token", CONTENT_TYPE))
            await client.send(sid, part(json.dumps(event_json("SpeechRecognizer", "Recognize", {})).encode()))
            await client.send(sid, part(b"\x00" * 6400, "application/octet-stream", "audio"))
            st = await client.wait(sid, lambda s: s.status is not None, timeout=5)
            assert st.status == 401  # answered before the body ended
            await client.wait(sid, lambda s: s.ended, timeout=5)
            await client.ping()
            assert not client.streams[down].ended
            assert await _text_round_trip(client, token)
        finally:
            await client.close()

    asyncio.run(go())


def test_connection_outlives_a_thousand_requests(hypercorn_server: ServerHandle) -> None:
    """Hypercorn's default GOAWAY after 1000 requests would cut a device off."""
    async def go() -> None:
        client = await hypercorn_server.connect()
        try:
            for _ in range(1100):
                assert (await client.request("GET", "/ping")).status == 204
            assert client.goaway is None
        finally:
            await client.close()

    asyncio.run(go())


def test_hypercorn_serves_the_same_app(hypercorn_server: ServerHandle) -> None:
    token = hypercorn_server.create_token(f"hc-{uuid.uuid4().hex[:8]}")

    async def go() -> None:
        client = await hypercorn_server.connect()
        try:
            down = await _downchannel(client, token)
            assert await _text_round_trip(client, token) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
            # Early answers (401, 400) with request bodies in flight: Hypercorn would kill
            # the connection on late DATA frames, so the app drains first (design.md).
            for headers, body in (
                (auth_headers(None, CONTENT_TYPE), event_body(event_json("TextRecognizer", "Recognize", {"text": "x" * 50_000}, "d"))),
                (auth_headers(token, CONTENT_TYPE), b"garbage" * 20_000),
            ):
                resp = await client.request("POST", "/v1/events", headers, body)
                assert resp.status in (400, 401)
                exception_of(resp)
            await client.ping()
            assert not client.streams[down].ended
            assert await _text_round_trip(client, token)
        finally:
            await client.close()

    asyncio.run(go())


def test_data_dir_is_reused_across_restarts(tmp_path: Path) -> None:
    """A token made before a restart still works after it; the cert is not regenerated."""
    data_dir = tmp_path / "data"
    first = start_server(data_dir, tls=True)
    token = first.create_token("restart-dev")
    cert = (data_dir / "tls" / "cert.pem").read_bytes()
    stop_server(first)
    second = start_server(data_dir, tls=True)
    try:
        assert (data_dir / "tls" / "cert.pem").read_bytes() == cert

        async def go() -> Any:
            client = await second.connect()
            try:
                await _downchannel(client, token)
            finally:
                await client.close()

        asyncio.run(go())
    finally:
        stop_server(second)


def test_stop_ends_open_downchannels_cleanly_and_quickly(tmp_path: Path) -> None:
    """SIGTERM with devices connected: each downchannel gets its closing delimiter and
    the server exits promptly (a downchannel never ends by itself)."""
    import time

    handle = start_server(tmp_path / "stop")
    token = handle.create_token("stopping-dev")

    async def go() -> None:
        client = await handle.connect()
        try:
            sid = await _downchannel(client, token)
            started = time.monotonic()
            handle.process.terminate()
            st = await client.wait(sid, lambda s: s.ended, timeout=10)
            assert st.reset is None
            _, closed = read_parts(st.headers["content-type"], bytes(st.body))
            assert closed
            await client.close()  # as a device does on GOAWAY, before reconnecting
            await asyncio.to_thread(handle.process.wait, 10)
            assert time.monotonic() - started < 8
        finally:
            await client.close()

    try:
        asyncio.run(go())
    finally:
        stop_server(handle)
