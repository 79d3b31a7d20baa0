"""A deliberately low-level HTTP/2 test client on ``h2`` + asyncio.

The SDK always sends well-formed requests; tests of the server's error handling need
to send exactly the bytes they choose (broken multipart, half bodies, resets), on one
connection shared with a downchannel, and to look at PING and stream resets.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from opencic.client.connection import FrameSplitter


@dataclass
class StreamState:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: int | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class RawH2:
    def __init__(self) -> None:
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.streams: dict[int, StreamState] = {}
        self.pings: dict[bytes, asyncio.Future[None]] = {}
        self.closed = asyncio.Event()
        self.window_open = asyncio.Event()
        self.goaway: h2.events.ConnectionTerminated | None = None

    @classmethod
    async def connect(cls, host: str, port: int, *, tls: bool = False, cafile: str | None = None,
                      local_host: str | None = None) -> RawH2:
        """``local_host``: the source address (e.g. 127.0.0.2, to look like another
        client to per-address rules; all of 127/8 is loopback on Linux)."""
        self = cls()
        ctx = None
        if tls:
            ctx = ssl.create_default_context(cafile=cafile)
            ctx.set_alpn_protocols(["h2"])
        self.reader, self.writer = await asyncio.open_connection(
            host, port, ssl=ctx, server_hostname=host if tls else None,
            local_addr=(local_host, 0) if local_host else None)
        if tls:
            sslobj = self.writer.get_extra_info("ssl_object")
            self.alpn = sslobj.selected_alpn_protocol() if sslobj else None
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(2**24)
        await self._flush()
        self._task = asyncio.create_task(self._read_loop())
        return self

    async def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def _read_loop(self) -> None:
        frames = FrameSplitter()
        try:
            while self.goaway is None:
                data = await self.reader.read(65536)
                if not data:
                    break
                # Frame by frame, stopping at GOAWAY: h2 refuses any later frame (a
                # graceful stop sends GOAWAY then PING) and would lose what came before.
                for frame in frames.feed(data):
                    for ev in self.conn.receive_data(frame):
                        self._on_event(ev)
                    if self.goaway is not None:
                        break
                await self._flush()
        except (ConnectionError, h2.exceptions.ProtocolError, ssl.SSLError):
            pass
        finally:
            self.closed.set()
            for st in self.streams.values():
                st.changed.set()
            for fut in self.pings.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))

    def _on_event(self, ev: h2.events.Event) -> None:
        sid = getattr(ev, "stream_id", None)
        st = self.streams.get(sid) if sid else None
        if isinstance(ev, h2.events.ResponseReceived) and st:
            st.headers = {k: v for k, v in ev.headers}  # type: ignore[misc]
            st.status = int(st.headers[":status"])
        elif isinstance(ev, h2.events.DataReceived) and st:
            st.body += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded) and st:
            st.ended = True
        elif isinstance(ev, h2.events.StreamReset) and st:
            st.reset = ev.error_code
            st.ended = True
        elif isinstance(ev, h2.events.PingAckReceived):
            fut = self.pings.pop(ev.ping_data, None)
            if fut and not fut.done():
                fut.set_result(None)
        elif isinstance(ev, h2.events.WindowUpdated):
            self.window_open.set()
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev
        if st:
            st.changed.set()

    def _headers(self, method: str, path: str, headers: dict[str, str] | None) -> list[tuple[str, str]]:
        out = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "localhost")]
        out += [(k.lower(), v) for k, v in (headers or {}).items()]
        return out

    async def start(self, method: str, path: str, headers: dict[str, str] | None = None, *, end: bool = False) -> int:
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = StreamState()
        self.conn.send_headers(sid, self._headers(method, path, headers), end_stream=end)
        await self._flush()
        return sid

    async def send(self, sid: int, data: bytes, *, end: bool = False) -> None:
        view = memoryview(data)
        while True:
            window = self.conn.local_flow_control_window(sid)
            frame = min(window, self.conn.max_outbound_frame_size)
            if len(view) <= frame:
                self.conn.send_data(sid, bytes(view), end_stream=end)
                break
            if frame > 0:
                self.conn.send_data(sid, bytes(view[:frame]))
                view = view[frame:]
                continue
            # Only when the window is exhausted do we wait for the peer's WINDOW_UPDATE.
            self.window_open.clear()
            await self._flush()
            await asyncio.wait_for(self.window_open.wait(), 10)
        await self._flush()

    async def end(self, sid: int) -> None:
        self.conn.end_stream(sid)
        await self._flush()

    async def reset(self, sid: int) -> None:
        self.conn.reset_stream(sid)
        await self._flush()

    async def wait(self, sid: int, predicate, timeout: float = 10.0) -> StreamState:  # type: ignore[no-untyped-def]
        st = self.streams[sid]

        async def loop() -> None:
            while not predicate(st):
                if self.closed.is_set():
                    raise ConnectionError("connection closed")
                st.changed.clear()
                await st.changed.wait()

        await asyncio.wait_for(loop(), timeout)
        return st

    async def response(self, sid: int, timeout: float = 30.0) -> Response:
        st = await self.wait(sid, lambda s: s.ended, timeout)
        return Response(st.status or 0, st.headers, bytes(st.body))

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None,
        timeout: float = 30.0,
    ) -> Response:
        sid = await self.start(method, path, headers, end=body is None)
        if body is not None:
            await self.send(sid, body, end=True)
        return await self.response(sid, timeout)

    async def ping(self, timeout: float = 5.0) -> None:
        data = asyncio.get_running_loop().time().hex().encode()[:8].ljust(8, b"0")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pings[data] = fut
        self.conn.ping(data)
        await self._flush()
        await asyncio.wait_for(fut, timeout)

    async def close(self) -> None:
        # Closing a connection that may already be dead: errors mean "already closed".
        with contextlib.suppress(Exception):
            self.conn.close_connection()
            await self._flush()
        self.writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
