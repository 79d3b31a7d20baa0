"""Light HTTP/2 clients for the benchmarks (cleartext, prior knowledge, loopback only).

:class:`Fleet` holds thousands of idle downchannels, one connection (= one device) each,
with a hand-written frame loop on :class:`asyncio.Protocol`: no ``h2`` state machine per
connection, so the client stays cheap enough not to dominate a fan-out measurement on a
2-core machine. It only understands what a downchannel needs: SETTINGS/PING acks, the
response HEADERS, DATA (with WINDOW_UPDATE), RST_STREAM, GOAWAY.

:class:`Control` is a plain ``h2`` client for the few one-off requests (warm-up,
capturing a reply, triggering a push).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
USER_AGENT = "OpenCIC/Bench/0.1.0 (Linux;Bench)"

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0,
    1,
    3,
    4,
    6,
    7,
    8,
    9,
)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
STREAM = 1  # the downchannel is the only stream a fleet connection opens
WINDOW = 65_535  # the default receive window, like a real device


def _frame(ftype: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes((ftype, flags))
        + struct.pack(">I", stream)
        + payload
    )


def _settings_frame() -> bytes:
    # ENABLE_PUSH = 0; everything else default.
    return _frame(SETTINGS, 0, 0, struct.pack(">HI", 0x2, 0))


class Fleet:
    """Many downchannels, one per connection, plus the bookkeeping of a push."""

    def __init__(self) -> None:
        self.channels: list[Downchannel] = []
        self.opened = 0
        self.failed = 0
        self.closed = 0
        self.statuses: dict[int, int] = {}
        self._waiting = 0
        self._done: asyncio.Future[None] | None = None
        self.receipts: list[float] = []

    # -- push bookkeeping -------------------------------------------------------

    def arm(self, marker: bytes) -> int:
        """Watch every open downchannel for a part containing ``marker``."""
        self.receipts = []
        self._done = asyncio.get_running_loop().create_future()
        self._waiting = 0
        for ch in self.channels:
            if ch.open and not ch.ended:
                ch.watch(marker)
                self._waiting += 1
        if self._waiting == 0:
            self._done.set_result(None)
        return self._waiting

    def received(self, when: float) -> None:
        self.receipts.append(when)
        self._waiting -= 1
        if self._waiting <= 0 and self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def wait_all(self, timeout: float) -> bool:
        assert self._done is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._done), timeout)
            return True
        except TimeoutError:
            return False

    def disarm(self) -> None:
        for ch in self.channels:
            ch.marker = None
        self._done = None

    # -- opening and closing ------------------------------------------------------

    async def open(
        self,
        host: str,
        port: int,
        tokens: list[str],
        *,
        parallel: int = 200,
        timeout: float = 120.0,
    ) -> float:
        """Open one downchannel per token; returns the seconds it took (bounded by timeout)."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(parallel)
        authority = f"{host}:{port}"

        async def one(token: str) -> None:
            async with gate:
                ch = Downchannel(self, authority, token)
                self.channels.append(ch)
                try:
                    await loop.create_connection(lambda: ch, host, port)
                    await asyncio.wait_for(ch.ready, 30.0)
                except (TimeoutError, OSError, ConnectionError):
                    if not ch.ready.done():
                        ch.ready.set_result(False)
                    ch.abort()

        started = time.perf_counter()
        tasks = [asyncio.ensure_future(one(t)) for t in tokens]
        try:
            await asyncio.wait(tasks, timeout=timeout)
        finally:  # on timeout or cancellation (Ctrl-C): no opening attempt outlives this call
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return time.perf_counter() - started

    @property
    def live(self) -> int:
        return sum(1 for ch in self.channels if ch.open and not ch.ended)

    def close(self) -> None:
        for ch in self.channels:
            ch.abort()

    async def aclose(self) -> None:
        """Abort every connection and let the loop actually close the sockets."""
        self.close()
        await asyncio.sleep(0)
        await asyncio.sleep(0)


class Downchannel(asyncio.Protocol):
    """One connection holding ``GET /v1/directives`` open on stream 1."""

    def __init__(self, fleet: Fleet, authority: str, token: str) -> None:
        self.fleet = fleet
        self.authority = authority
        self.token = token
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.inbuf = bytearray()
        self.decoder: hpack.Decoder | None = hpack.Decoder()
        self.header_block = bytearray()
        self.status: int | None = None
        self.open = False  # 200 and Hello received
        self.ended = False
        self.marker: bytes | None = b'"Hello"'
        self.seen = bytearray()
        self.unacked_stream = 0
        self.unacked_conn = 0

    # -- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        block = hpack.Encoder().encode(
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", self.authority),
                (":path", "/v1/directives"),
                ("authorization", f"Bearer {self.token}"),
                ("user-agent", USER_AGENT),
            ]
        )
        transport.write(
            PREFACE + _settings_frame() + _frame(HEADERS, END_HEADERS | END_STREAM, STREAM, block)
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buf = self.inbuf
        buf += data
        pos = 0
        out: list[bytes] = []
        while len(buf) - pos >= 9:
            length = int.from_bytes(buf[pos : pos + 3], "big")
            if len(buf) - pos < 9 + length:
                break
            ftype, flags = buf[pos + 3], buf[pos + 4]
            stream = int.from_bytes(buf[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
            payload = bytes(buf[pos + 9 : pos + 9 + length])
            pos += 9 + length
            self._on_frame(ftype, flags, stream, payload, out)
        del buf[:pos]
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    # -- frames -------------------------------------------------------------------

    def _on_frame(
        self, ftype: int, flags: int, stream: int, payload: bytes, out: list[bytes]
    ) -> None:
        if ftype == DATA:
            self._flow(len(payload), out)  # padding counts against the window too
            if flags & PADDED and payload:
                payload = payload[1 : len(payload) - payload[0]]
            if stream == STREAM:
                self._on_data(payload)
                if flags & END_STREAM:
                    self._end()
        elif ftype in (HEADERS, CONTINUATION) and stream == STREAM:
            if ftype == HEADERS:
                if flags & PADDED and payload:
                    payload = payload[1 : len(payload) - payload[0]]
                if flags & PRIORITY:
                    payload = payload[5:]
            self.header_block += payload
            if flags & END_HEADERS:
                self._on_headers(bytes(self.header_block))
                self.header_block.clear()
            if ftype == HEADERS and flags & END_STREAM:
                self._end()
        elif ftype == SETTINGS and not flags & ACK:
            out.append(_frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            out.append(_frame(PING, ACK, 0, payload))
        elif ftype == RST_STREAM and stream == STREAM:
            self._end()
        elif ftype == GOAWAY:
            last = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            if last < STREAM:
                self._end()

    def _flow(self, n: int, out: list[bytes]) -> None:
        # Give the window back once half of it is used, on the stream and the connection.
        self.unacked_stream += n
        self.unacked_conn += n
        if self.unacked_stream >= WINDOW // 2:
            out.append(_frame(WINDOW_UPDATE, 0, STREAM, struct.pack(">I", self.unacked_stream)))
            self.unacked_stream = 0
        if self.unacked_conn >= WINDOW // 2:
            out.append(_frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", self.unacked_conn)))
            self.unacked_conn = 0

    def _on_headers(self, block: bytes) -> None:
        if self.decoder is None:
            return
        try:
            headers = self.decoder.decode(block)
        except hpack.HPACKError:
            self.abort()
            return
        for name, value in headers:
            if name in (":status", b":status"):
                self.status = int(value)
        if self.status is not None:
            self.fleet.statuses[self.status] = self.fleet.statuses.get(self.status, 0) + 1
            self.decoder = None  # no more header blocks expected on a downchannel
            if self.status != 200:
                self._fail()

    def _on_data(self, data: bytes) -> None:
        marker = self.marker
        if marker is None:
            return
        seen = self.seen
        seen += data
        at = seen.find(marker)
        # The part is complete once the delimiter after it has arrived.
        if at >= 0 and seen.find(b"\r\n--", at) >= 0:
            now = time.perf_counter()
            self.marker = None
            seen.clear()
            if not self.open:
                self.open = True
                self.fleet.opened += 1
                if not self.ready.done():
                    self.ready.set_result(True)
            else:
                self.fleet.received(now)
        elif len(seen) > 1 << 20:
            seen.clear()  # bounded: something unexpected is streaming

    def watch(self, marker: bytes) -> None:
        self.seen.clear()
        self.marker = marker

    # -- ending ---------------------------------------------------------------------

    def _fail(self) -> None:
        self.fleet.failed += 1
        if not self.ready.done():
            self.ready.set_result(False)
        self.abort()

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            if self.open:
                self.fleet.closed += 1
            if not self.ready.done():
                self.ready.set_result(False)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


# ---------------------------------------------------------------------- one-off requests


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    answered_at: float | None = None  # perf_counter() when the response headers arrived


@dataclass
class _Pending:
    answered_at: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Control:
    """A small ``h2`` client: a few sequential or concurrent requests on one connection."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, authority: str
    ) -> None:
        self.reader, self.writer, self.authority = reader, writer, authority
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.pending: dict[int, _Pending] = {}
        self.task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, host: str, port: int) -> Control:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        self = cls(reader, writer, f"{host}:{port}")
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(2**24)
        self.writer.write(self.conn.data_to_send())
        self.task = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        try:
            while data := await self.reader.read(65536):
                for ev in self.conn.receive_data(data):
                    p = self.pending.get(getattr(ev, "stream_id", 0) or 0)
                    if isinstance(ev, h2.events.ResponseReceived) and p:
                        p.answered_at = time.perf_counter()
                        p.headers = {str(k): str(v) for k, v in ev.headers or []}
                    elif isinstance(ev, h2.events.DataReceived) and p:
                        p.body += ev.data or b""
                        self.conn.acknowledge_received_data(
                            ev.flow_controlled_length or 0, ev.stream_id or 0
                        )
                    elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)) and p:
                        p.done.set()
                self.writer.write(self.conn.data_to_send())
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            for p in self.pending.values():
                p.done.set()

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 30.0,
    ) -> Reply:
        sid = self.conn.get_next_available_stream_id()
        pending = self.pending[sid] = _Pending()
        hdrs = [
            (":method", method),
            (":path", path),
            (":scheme", "http"),
            (":authority", self.authority),
            ("user-agent", USER_AGENT),
        ] + list((headers or {}).items())
        self.conn.send_headers(sid, hdrs, end_stream=body is None)
        if body is not None:
            # Bench bodies are small: they fit in the initial windows.
            self.conn.send_data(sid, body, end_stream=True)
        self.writer.write(self.conn.data_to_send())
        try:
            await asyncio.wait_for(pending.done.wait(), timeout)
        finally:
            del self.pending[sid]
        status = int(pending.headers.get(":status", "0"))
        return Reply(status, pending.headers, bytes(pending.body), pending.answered_at)

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection
            self.conn.close_connection()
            self.writer.write(self.conn.data_to_send())
        self.writer.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
