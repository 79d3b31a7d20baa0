"""The HTTP/2 connection layer against a small scripted ``h2`` server (no CIC involved).

Covers what the SDK relies on: incremental bodies, request-body flow control, full
duplex, PING with ACK (B-KA-01), stream reset, GOAWAY and connection loss surfaced to
every open stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Self

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from opencic.client.connection import HTTP2Connection
from opencic.client.errors import ConnectionClosed, PingTimeout, StreamReset

Handler = Callable[["MiniServer", int, dict[str, str]], Awaitable[None]]


class MiniServer:
    """An h2c server whose per-request behaviour is a coroutine supplied by the test."""

    def __init__(self, handler: Handler, *, window: int = 65535, auto_ack: bool = True) -> None:
        self.handler = handler
        self.window = window
        self.auto_ack = auto_ack
        self.bodies: dict[int, bytearray] = {}
        self.ended: dict[int, asyncio.Event] = {}
        self.received = asyncio.Event()
        self.pings_answered = True
        self.conn: h2.connection.H2Connection | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.unacked: list[tuple[int, int]] = []

    async def __aenter__(self) -> Self:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        if self.writer is not None:
            self.writer.transport.abort()

    def flush(self) -> None:
        assert self.conn is not None and self.writer is not None
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)

    def ack_all(self) -> None:
        assert self.conn is not None
        for sid, n in self.unacked:
            self.conn.acknowledge_received_data(n, sid)
        self.unacked.clear()
        self.flush()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        conn = h2.connection.H2Connection(config=config)
        self.conn, self.writer = conn, writer
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self.window})
        self.flush()
        while True:
            data = await reader.read(65536)
            if not data:
                return
            if not self.pings_answered:
                continue  # simulate a dead peer: swallow everything
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    sid = ev.stream_id
                    self.bodies[sid] = bytearray()
                    self.ended[sid] = asyncio.Event()
                    headers = dict(ev.headers)  # type: ignore[arg-type]
                    asyncio.create_task(self.handler(self, sid, headers))
                elif isinstance(ev, h2.events.DataReceived):
                    self.bodies[ev.stream_id] += ev.data
                    self.received.set()
                    if self.auto_ack:
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    else:
                        self.unacked.append((ev.stream_id, ev.flow_controlled_length))
                elif isinstance(ev, h2.events.StreamEnded):
                    self.ended[ev.stream_id].set()
            self.flush()


def respond(server: MiniServer, sid: int, status: int, body: bytes = b"", *, end: bool = True) -> None:
    assert server.conn is not None
    server.conn.send_headers(sid, [(":status", str(status)), ("content-type", "text/plain")])
    size = server.conn.max_outbound_frame_size
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    for i, chunk in enumerate(chunks):
        if chunk or end:
            server.conn.send_data(sid, chunk, end_stream=end and i == len(chunks) - 1)
    server.flush()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


async def echo(server: MiniServer, sid: int, headers: dict[str, str]) -> None:
    await server.ended[sid].wait()
    respond(server, sid, 200, bytes(server.bodies[sid]))


def test_request_response_and_headers() -> None:
    async def main() -> None:
        async with MiniServer(echo) as srv:
            conn = await HTTP2Connection.open("127.0.0.1", srv.port)
            stream = await conn.request("POST", "/x", [("user-agent", "t")])
            await stream.send(b"hello ", end_stream=False)
            await stream.send(b"world", end_stream=True)
            head = await stream.response(5)
            assert head.status == 200 and head.get("Content-Type") == "text/plain"
            assert await stream.read() == b"hello world"
            await conn.aclose()

    run(main())


def test_large_body_respects_flow_control() -> None:
    # The server grants 16 KiB per stream and only returns window when told to: the
    # client must stop and wait, not overrun (h2 would raise FlowControlError).
    async def main() -> None:
        async with MiniServer(echo, window=16384, auto_ack=False) as srv:
            conn = await HTTP2Connection.open("127.0.0.1", srv.port)
            stream = await conn.request("POST", "/big")
            payload = bytes(range(256)) * 1024  # 256 KiB
            sender = asyncio.create_task(stream.send(payload, end_stream=True))
            await asyncio.sleep(0.2)
            assert not sender.done()
            assert len(srv.bodies[stream.stream_id]) <= 65535
            while not sender.done():
                srv.ack_all()
                await asyncio.sleep(0.01)
            await sender
            await stream.response(5)
            assert await stream.read() == payload
            await conn.aclose()

    run(main())


def test_full_duplex_response_before_request_body_ends() -> None:
    async def early(server: MiniServer, sid: int, headers: dict[str, str]) -> None:
        await server.received.wait()
        respond(server, sid, 200, b"first", end=False)
        await server.ended[sid].wait()
        assert server.conn is not None
        server.conn.send_data(sid, b"|last", end_stream=True)
        server.flush()

    async def main() -> None:
        async with MiniServer(early) as srv:
            conn = await HTTP2Connection.open("127.0.0.1", srv.port)
            stream = await conn.request("POST", "/dup")
            await stream.send(b"part1")
            head = await stream.response(5)  # while our upload is still open
            assert head.status == 200
            chunks = stream.__aiter__()
            assert await chunks.__anext__() == b"first"
            await stream.send(b"part2", end_stream=True)
            assert await chunks.__anext__() == b"|last"
            await conn.aclose()

    run(main())


def test_ping_ack_and_timeout() -> None:
    async def main() -> None:
        async with MiniServer(echo) as srv:
            conn = await HTTP2Connection.open("127.0.0.1", srv.port)
            rtt = await conn.ping(5)
            assert 0 <= rtt < 5
            srv.pings_answered = False
            with pytest.raises(PingTimeout):
                await conn.ping(0.3)
            await conn.aclose()

    run(main())


def test_stream_reset_by_server_leaves_connection_usable() -> None:
    async def handler(server: MiniServer, sid: int, headers: dict[str, str]) -> None:
        assert server.conn is not None
        if headers[":path"] == "/reset":
            respond(server, sid, 200, b"partial", end=False)
            server.conn.reset_stream(sid, 8)
            server.flush()
        else:
            respond(server, sid, 204)

    async def main() -> None:
        async with MiniServer(handler) as srv:
            conn = await HTTP2Connection.open("127.0.0.1", srv.port)
            stream = await conn.request("GET", "/reset", end_stream=True)
            await stream.response(5)
            with pytest.raises(StreamReset) as info:
                await stream.read()
            assert info.value.error_code == 8
            ok = await conn.request("GET", "/ok", end_stream=True)
            assert (await ok.response(5)).status == 204
            await conn.aclose()

    run(main())


def test_goaway_and_connection_loss_fail_open_streams() -> None:
    async def hang(server: MiniServer, sid: int, headers: dict[str, str]) -> None:
        respond(server, sid, 200, b"", end=False)  # a downchannel-like open stream

    async def main() -> None:
        async with MiniServer(hang) as srv:
            conn = await HTTP2Connection.open("127.0.0.1", srv.port)
            stream = await conn.request("GET", "/long", end_stream=True)
            await stream.response(5)
            assert srv.conn is not None
            srv.conn.close_connection(last_stream_id=0)
            srv.flush()
            with pytest.raises(ConnectionClosed) as info:
                await stream.read()
            assert "GOAWAY" in info.value.reason and info.value.retryable
            assert conn.is_closed
            with pytest.raises(ConnectionClosed):
                await conn.request("GET", "/again", end_stream=True)

        async with MiniServer(hang) as srv:
            conn = await HTTP2Connection.open("127.0.0.1", srv.port)
            streams = [await conn.request("GET", f"/s{i}", end_stream=True) for i in range(3)]
            for s in streams:
                await s.response(5)
            assert srv.writer is not None
            srv.writer.transport.abort()  # network loss
            for s in streams:
                with pytest.raises(ConnectionClosed):
                    await s.read()
            reason = await asyncio.wait_for(conn.wait_closed(), 5)
            assert isinstance(reason, ConnectionClosed)

    run(main())


def test_client_reset_returns_window() -> None:
    async def stream_forever(server: MiniServer, sid: int, headers: dict[str, str]) -> None:
        respond(server, sid, 200, b"x" * 1000, end=False)

    async def main() -> None:
        async with MiniServer(stream_forever) as srv:
            conn = await HTTP2Connection.open("127.0.0.1", srv.port)
            stream = await conn.request("GET", "/", end_stream=True)
            await stream.response(5)
            stream.reset()
            with pytest.raises(StreamReset):
                await stream.read()
            assert (await conn.ping(5)) >= 0  # connection unaffected
            await conn.aclose()

    run(main())
