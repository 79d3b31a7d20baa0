"""A real loopback TCP proxy in front of a real server, for network faults in tests.

::

    async with FaultProxy(server.host, server.port) as proxy:
        client = CICClient(proxy.url, token)
        proxy.pause()    # a black hole: nothing moves either way, PINGs go unanswered
        proxy.resume()   # whatever was held flows on, in order
        proxy.cut()      # every open connection dropped abruptly (RST), like a lost link

It moves bytes and nothing else: it does not speak HTTP/2 and cannot answer for the
server. It keeps a bounded copy of what each connection carried, so a test can read the
HTTP/2 frames a client really put on the wire (:meth:`Link.requests`).

Bounded: at most ``max_connections`` links, at most ``hold_limit`` bytes held per
direction while paused (past that the socket is not read, so TCP applies back-pressure),
at most ``record_limit`` bytes recorded, and after ``lifetime`` seconds it closes itself.
While paused it keeps reading and recording up to ``hold_limit``: a test that waits for
"the client sent X" must see X even when the client wrote something else (a
WINDOW_UPDATE, a PING) just before it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Self

import hpack

CHUNK = 65536
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# HTTP/2 frame types and flags (RFC 9113 section 6).
DATA, HEADERS, RST_STREAM, SETTINGS, WINDOW_UPDATE, CONTINUATION = 0x0, 0x1, 0x3, 0x4, 0x8, 0x9
END_STREAM, END_HEADERS, PADDED, PRIORITY = 0x1, 0x4, 0x8, 0x20


@dataclass(eq=False)
class Link:
    """One client connection and its upstream connection to the server."""

    index: int
    accepted_at: float
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    sent: bytearray = field(default_factory=bytearray)  # client -> server, as recorded
    received: bytearray = field(default_factory=bytearray)  # server -> client
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def requests(self) -> list[WireRequest]:
        """The HTTP/2 requests the client sent on this connection (complete frames only)."""
        return h2_requests(bytes(self.sent))

    def server_frames(self) -> list[Frame]:
        return h2_frames(bytes(self.received))

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()
        self.closed.set()

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.close()  # flushes what is already written, then FIN
        self.closed.set()


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, max_connections: int = 32,
                 record_limit: int = 32 << 20, hold_limit: int = 1 << 20,
                 lifetime: float = 120.0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.max_connections = max_connections
        self.record_limit = record_limit
        self.hold_limit = hold_limit
        self.lifetime = lifetime
        self.links: list[Link] = []
        self.recorded = 0
        self.truncated = False  # recording stopped at record_limit
        self._running = asyncio.Event()
        self._running.set()
        self._server: asyncio.Server | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.host = "127.0.0.1"
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(self.lifetime, lambda: loop.create_task(self.close()))
        return self

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def accepted(self) -> int:
        return len(self.links)

    async def close(self) -> None:
        """Stop listening and drop every link; idempotent."""
        if self._expiry is not None:
            self._expiry.cancel()
        if self._server is not None:
            self._server.close()
        self._running.set()  # release held pumps so they can end
        self.cut()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- faults ------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        """Stop forwarding in both directions on every link, new ones included."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cut(self) -> None:
        """Drop every open connection at once: RST to the client and to the server."""
        for link in self.links:
            if not link.closed.is_set():
                link.abort()

    async def wait_accepted(self, count: int, timeout: float = 10.0) -> Link:
        """Wait until ``count`` connections were accepted; returns the latest."""
        async with asyncio.timeout(timeout):
            while self.accepted < count:
                await asyncio.sleep(0.01)
        return self.links[-1]

    # -- forwarding --------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.links) >= self.max_connections:
            writer.transport.abort()
            return
        link = Link(len(self.links), asyncio.get_running_loop().time(), writer)
        self.links.append(link)
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 5)
        except (OSError, TimeoutError):
            link.abort()  # the server is down: the client sees its connection die
            return
        link.upstream = up_writer
        if link.closed.is_set():  # cut while we were connecting
            link.abort()
            return
        link.tasks = [self._spawn(self._pump(link, reader, up_writer, link.sent)),
                      self._spawn(self._pump(link, up_reader, writer, link.received))]

    def _record(self, into: bytearray, data: bytes) -> None:
        room = self.record_limit - self.recorded
        if len(data) > room:
            self.truncated = True
            data = data[:max(room, 0)]
        into += data
        self.recorded += len(data)

    async def _pump(self, link: Link, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, record: bytearray) -> None:
        held = bytearray()  # read (and recorded) but not yet forwarded
        ended = False
        reading: asyncio.Task[bytes] | None = None
        try:
            while not link.closed.is_set():
                running = self._running.is_set()
                if running and held:
                    writer.write(bytes(held))
                    held.clear()
                    await writer.drain()
                    continue
                if ended:
                    if running:
                        break
                    await self._running.wait()  # flush what is held, then end
                    continue
                if not running and len(held) >= self.hold_limit:
                    await self._running.wait()  # full: stop reading, TCP pushes back
                    continue
                if reading is None:
                    reading = asyncio.ensure_future(reader.read(CHUNK))
                if not running:
                    resumed = asyncio.ensure_future(self._running.wait())
                    await asyncio.wait({reading, resumed}, return_when=asyncio.FIRST_COMPLETED)
                    resumed.cancel()
                    if not reading.done():
                        continue  # resumed while waiting: flush first, keep the read
                data = await reading
                reading = None
                self._record(record, data)
                if data:
                    held += data
                else:
                    ended = True
        except (OSError, ConnectionError):
            link.abort()
            return
        finally:
            if reading is not None:
                reading.cancel()
        if not link.closed.is_set():
            link.close()  # one side ended the connection: end the other side too


# ------------------------------------------------------------------ reading the wire


@dataclass
class Frame:
    type: int
    flags: int
    stream_id: int
    payload: bytes


@dataclass
class WireRequest:
    """One request stream as the client sent it."""

    stream_id: int
    headers: dict[str, str]  # lower-case names, pseudo-headers included
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False  # END_STREAM sent
    reset: bool = False  # RST_STREAM sent

    @property
    def method(self) -> str:
        return self.headers.get(":method", "")

    @property
    def path(self) -> str:
        return self.headers.get(":path", "")


def h2_frames(data: bytes, *, client: bool = False) -> list[Frame]:
    """The complete frames in ``data`` (a client's bytes start with the preface)."""
    if client:
        if not data.startswith(PREFACE):
            raise ValueError("client bytes do not start with the HTTP/2 preface")
        data = data[len(PREFACE):]
    frames = []
    i = 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i:i + 3], "big")
        if i + 9 + length > len(data):
            break
        stream_id = int.from_bytes(data[i + 5:i + 9], "big") & 0x7FFFFFFF
        frames.append(Frame(data[i + 3], data[i + 4], stream_id, data[i + 9:i + 9 + length]))
        i += 9 + length
    return frames


def _unpad(frame: Frame) -> bytes:
    payload = frame.payload
    if frame.flags & PADDED:
        payload = payload[1:len(payload) - payload[0]]
    return payload


def h2_requests(data: bytes) -> list[WireRequest]:
    """Decode a client's side of one connection into its requests, in stream order."""
    decoder = hpack.Decoder()
    requests: dict[int, WireRequest] = {}
    block = bytearray()
    block_sid, block_end_stream = 0, False
    for frame in h2_frames(data, client=True):
        if frame.type in (HEADERS, CONTINUATION):
            payload = _unpad(frame) if frame.type == HEADERS else frame.payload
            if frame.type == HEADERS:
                if frame.flags & PRIORITY:
                    payload = payload[5:]
                block_sid, block_end_stream = frame.stream_id, bool(frame.flags & END_STREAM)
                block.clear()
            block += payload
            if frame.flags & END_HEADERS:
                fields = decoder.decode(bytes(block))  # always, to keep HPACK state right
                headers = {str(k).lower(): str(v) for k, v in fields}
                request = requests.setdefault(block_sid, WireRequest(block_sid, headers))
                request.ended |= block_end_stream
        elif frame.type == DATA and frame.stream_id in requests:
            requests[frame.stream_id].body += _unpad(frame)
            requests[frame.stream_id].ended |= bool(frame.flags & END_STREAM)
        elif frame.type == RST_STREAM and frame.stream_id in requests:
            requests[frame.stream_id].reset = True
    return [requests[sid] for sid in sorted(requests)]


def settings_of(frames: list[Frame]) -> dict[int, int]:
    """The values of the (non-ACK) SETTINGS frames, later ones winning."""
    out: dict[int, int] = {}
    for frame in frames:
        if frame.type == SETTINGS and not frame.flags & 0x1:
            for i in range(0, len(frame.payload) - 5, 6):
                out[int.from_bytes(frame.payload[i:i + 2], "big")] = int.from_bytes(
                    frame.payload[i + 2:i + 6], "big")
    return out
