"""One HTTP/2 connection over asyncio: a thin I/O shell around the ``h2`` state machine.

Why not httpx: a CIC device needs HTTP/2 PING (B-KA-01), a request body that keeps
streaming while the response is already being read (audio upload vs. StopCapture,
B-AU-03), and a response that never ends (the downchannel, B-DC-02). ``h2`` gives all
three; this module only moves bytes between it and a socket and turns its events into
per-stream futures and queues.

Layering follows httpcore: this is the "connection" layer; it knows nothing about CIC
paths, multipart or tokens (``sdk.py`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes

from .errors import ConnectError, ConnectionClosed, PingTimeout, StreamReset, TransportError

log = logging.getLogger(__name__)

# Receive windows. The default 64 KiB would throttle Speak MP3 attachments to one
# round trip per 64 KiB; a larger connection window lets several streams (downchannel,
# an event response) flow at once without one starving the others.
STREAM_WINDOW = 1 << 20
CONNECTION_WINDOW = 16 << 20
READ_SIZE = 65536


def make_ssl_context(*, cafile: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """A client TLS context offering only ``h2`` via ALPN.

    ``cafile`` adds a trust anchor (e.g. the server's self-signed dev certificate);
    ``insecure`` disables verification entirely, for development only.
    """
    ctx = ssl.create_default_context(cafile=cafile)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    return ctx


@dataclass(slots=True)
class ResponseHead:
    """Status and headers of a response (header names are lower-case in HTTP/2)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default


# What a stream's receive queue carries: a data chunk with its flow-controlled
# length, the end marker (None), or the error that ended the stream.
_Item = tuple[bytes, int] | None | BaseException


class HTTP2Stream:
    """One request/response exchange. Created by :meth:`HTTP2Connection.request`."""

    def __init__(self, conn: HTTP2Connection, stream_id: int) -> None:
        self._conn = conn
        self.stream_id = stream_id
        self._head: asyncio.Future[ResponseHead] = asyncio.get_running_loop().create_future()
        self._items: asyncio.Queue[_Item] = asyncio.Queue()
        self._window_changed = asyncio.Event()
        self.local_closed = False  # we sent END_STREAM or RST_STREAM
        self.remote_closed = False  # peer sent END_STREAM or RST_STREAM
        self.error: BaseException | None = None
        self.trailers: list[tuple[str, str]] = []

    async def response(self, timeout: float | None = None) -> ResponseHead:
        """Wait for the response headers."""
        # shield: a timeout here must not cancel the future other waiters share.
        return await asyncio.wait_for(asyncio.shield(self._head), timeout)

    async def send(self, data: bytes, *, end_stream: bool = False) -> None:
        """Send request body bytes, waiting for flow-control window as needed."""
        await self._conn._send_data(self, data, end_stream)

    async def end(self) -> None:
        """Finish the request body (END_STREAM)."""
        await self._conn._send_data(self, b"", True)

    def reset(self, error_code: int = ErrorCodes.CANCEL) -> None:
        """Abandon the stream (RST_STREAM); the connection stays usable."""
        self._conn._reset_stream(self, error_code)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Response body chunks as they arrive; raises the error that ended the stream."""
        while True:
            item = await self._items.get()
            if item is None:
                # Put the marker back so a second iteration also ends instead of hanging.
                self._items.put_nowait(None)
                return
            if isinstance(item, BaseException):
                self._items.put_nowait(item)
                raise item
            data, flow_len = item
            # Hand window back only once the consumer took the bytes: a slow reader
            # then applies back-pressure to the server instead of buffering unboundedly.
            self._conn._ack(self.stream_id, flow_len)
            yield data

    async def read(self) -> bytes:
        """The whole remaining response body."""
        return b"".join([chunk async for chunk in self])

    # -- called by the connection -------------------------------------------------

    def _push(self, item: _Item) -> None:
        self._items.put_nowait(item)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        if not self._head.done():
            self._head.set_exception(exc)
            # Nobody may ever await the head (e.g. a reset upload); don't warn about it.
            self._head.exception()
        if not self.remote_closed:
            self.remote_closed = True
            self._items.put_nowait(exc)
        self.local_closed = True
        self._window_changed.set()

    def _discard_buffer(self) -> int:
        """Drop unread chunks; returns their flow-controlled size."""
        total = 0
        while not self._items.empty():
            item = self._items.get_nowait()
            if isinstance(item, tuple):
                total += item[1]
        return total


class HTTP2Connection:
    """A client HTTP/2 connection; open with :meth:`open`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        authority: str,
        scheme: str,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.authority = authority
        self.scheme = scheme
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self._h2 = h2.connection.H2Connection(config=config)
        self._streams: dict[int, HTTP2Stream] = {}
        self._pings: dict[bytes, asyncio.Future[None]] = {}
        self._slot_freed = asyncio.Event()
        self._closed: ConnectionClosed | None = None
        self._closed_event = asyncio.Event()
        self._reader_task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout: float = 10.0,
    ) -> HTTP2Connection:
        """Connect over TLS (ALPN ``h2``) or, without ``ssl_context``, h2c prior knowledge."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host,
                    port,
                    ssl=ssl_context,
                    server_hostname=(server_hostname or host) if ssl_context else None,
                ),
                timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        if ssl_context is not None:
            ssl_object = writer.get_extra_info("ssl_object")
            alpn = ssl_object.selected_alpn_protocol() if ssl_object else None
            if alpn != "h2":
                writer.close()
                raise ConnectError(f"server did not negotiate HTTP/2 via ALPN (got {alpn!r})")
        authority = host if port in (80, 443) else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            authority = f"[{host}]:{port}"
        conn = cls(reader, writer, authority=authority, scheme="https" if ssl_context else "http")
        conn._start()
        return conn

    def _start(self) -> None:
        self._h2.initiate_connection()
        self._h2.update_settings(
            {
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            }
        )
        self._h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self._flush()
        self._reader_task = asyncio.create_task(self._read_loop(), name="h2-reader")

    @property
    def is_closed(self) -> bool:
        return self._closed is not None

    @property
    def closed_reason(self) -> ConnectionClosed | None:
        return self._closed

    async def wait_closed(self) -> ConnectionClosed:
        await self._closed_event.wait()
        assert self._closed is not None
        return self._closed

    async def aclose(self) -> None:
        """Say GOAWAY and close the socket; open streams fail with ConnectionClosed."""
        if self._closed is None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.close_connection()
                self._flush()
            with contextlib.suppress(OSError, ConnectionError):
                await asyncio.wait_for(self._writer.drain(), 1.0)
        self.abort("closed by client")
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task

    def abort(self, reason: str) -> None:
        """Drop the connection at once (e.g. after a missed PING ACK)."""
        self._shutdown(ConnectionClosed(reason))
        self._writer.transport.abort()
        if self._reader_task is not None and self._reader_task is not asyncio.current_task():
            self._reader_task.cancel()

    # -- requests -----------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        *,
        end_stream: bool = False,
    ) -> HTTP2Stream:
        """Open a stream and send the request headers; the body follows via the stream."""
        # Respect the server's SETTINGS_MAX_CONCURRENT_STREAMS instead of failing.
        while (
            self._h2.open_outbound_streams >= self._h2.remote_settings.max_concurrent_streams
        ):
            self._raise_if_closed()
            self._slot_freed.clear()
            await self._slot_freed.wait()
        self._raise_if_closed()
        pseudo = [
            (":method", method),
            (":scheme", self.scheme),
            (":authority", self.authority),
            (":path", path),
        ]
        try:
            stream_id = self._h2.get_next_available_stream_id()
            self._h2.send_headers(stream_id, pseudo + list(headers), end_stream=end_stream)
        except h2.exceptions.ProtocolError as exc:
            raise TransportError(f"cannot open a stream: {exc!r}") from exc
        stream = HTTP2Stream(self, stream_id)
        self._streams[stream_id] = stream
        stream.local_closed = end_stream
        self._flush()
        await self._drain()
        return stream

    async def ping(self, timeout: float = 10.0) -> float:
        """Send an HTTP/2 PING and wait for its ACK; returns the round-trip time (s)."""
        self._raise_if_closed()
        opaque = os.urandom(8)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pings[opaque] = fut
        started = time.monotonic()
        self._h2.ping(opaque)
        self._flush()
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise PingTimeout(f"no PING ACK within {timeout:g} s") from None
        finally:
            self._pings.pop(opaque, None)
        return time.monotonic() - started

    # -- internals: sending -------------------------------------------------------

    def _raise_if_closed(self) -> None:
        if self._closed is not None:
            raise self._closed

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def _drain(self) -> None:
        try:
            await self._writer.drain()
        except (OSError, ConnectionError) as exc:
            self._shutdown(ConnectionClosed(f"write failed: {exc}"))
            raise self._closed or ConnectionClosed(str(exc)) from exc

    async def _send_data(self, stream: HTTP2Stream, data: bytes, end_stream: bool) -> None:
        try:
            await self._send_data_unchecked(stream, data, end_stream)
        except h2.exceptions.ProtocolError as exc:
            # e.g. the peer closed the stream between our check and the write.
            raise StreamReset(stream.stream_id, ErrorCodes.STREAM_CLOSED) from exc

    async def _send_data_unchecked(
        self, stream: HTTP2Stream, data: bytes, end_stream: bool
    ) -> None:
        view = memoryview(data)
        while True:
            self._raise_if_closed()
            if stream.local_closed:
                raise stream.error or StreamReset(stream.stream_id, ErrorCodes.STREAM_CLOSED)
            if not view:
                if end_stream:
                    self._end_stream(stream)
                return
            window = self._h2.local_flow_control_window(stream.stream_id)
            if window <= 0:
                # Woken by WINDOW_UPDATE / SETTINGS (see _handle) or by connection loss.
                stream._window_changed.clear()
                await stream._window_changed.wait()
                continue
            size = min(window, len(view), self._h2.max_outbound_frame_size)
            last = size == len(view)
            self._h2.send_data(stream.stream_id, bytes(view[:size]), end_stream=end_stream and last)
            if end_stream and last:
                stream.local_closed = True
                self._forget_if_done(stream)
            view = view[size:]
            self._flush()
            await self._drain()
            if last:
                return

    def _end_stream(self, stream: HTTP2Stream) -> None:
        self._h2.end_stream(stream.stream_id)
        stream.local_closed = True
        self._forget_if_done(stream)
        self._flush()

    def _reset_stream(self, stream: HTTP2Stream, error_code: int) -> None:
        if self._closed is None and not (stream.local_closed and stream.remote_closed):
            with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                self._h2.reset_stream(stream.stream_id, error_code)
                self._flush()
        # Unread chunks are dropped (and their window returned) before the error is
        # queued, so a reader sees the reset rather than stale data.
        self._ack(stream.stream_id, stream._discard_buffer())
        stream._fail(StreamReset(stream.stream_id, error_code))
        self._streams.pop(stream.stream_id, None)
        self._slot_freed.set()

    def _ack(self, stream_id: int, flow_len: int) -> None:
        if flow_len <= 0 or self._closed is not None:
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.acknowledge_received_data(flow_len, stream_id)
            self._flush()

    def _forget_if_done(self, stream: HTTP2Stream) -> None:
        if stream.local_closed and stream.remote_closed:
            self._streams.pop(stream.stream_id, None)
            self._slot_freed.set()

    # -- internals: receiving -----------------------------------------------------

    async def _read_loop(self) -> None:
        reason = "connection closed by peer"
        retryable = False
        frames = FrameSplitter()
        try:
            while self._closed is None:
                data = await self._reader.read(READ_SIZE)
                if not data:
                    break
                goaway = None
                try:
                    # Frame by frame: h2 refuses every frame after a GOAWAY (a server
                    # that stops gracefully sends GOAWAY, then PING), and a refusal
                    # would lose the GOAWAY and the events before it in the same read.
                    for frame in frames.feed(data):
                        for event in self._h2.receive_data(frame):
                            if isinstance(event, h2.events.ConnectionTerminated):
                                goaway = event
                            else:
                                self._handle(event)
                        if goaway is not None:
                            break
                except h2.exceptions.ProtocolError as exc:
                    reason = f"HTTP/2 protocol error: {exc}"
                    self._flush()  # h2 queued a GOAWAY for the peer
                    break
                self._flush()
                if goaway is not None:
                    # Streams below last_stream_id cannot finish now that h2 considers
                    # the connection closed; streams above it were never processed and
                    # may be retried elsewhere.
                    reason = f"GOAWAY received (error code {goaway.error_code})"
                    last = goaway.last_stream_id or 0
                    for sid, stream in list(self._streams.items()):
                        if sid > last:
                            stream._fail(ConnectionClosed(reason, retryable=True))
                    retryable = True
                    break
        except (OSError, ConnectionError, ssl.SSLError) as exc:
            reason = f"connection lost: {exc}"
        except asyncio.CancelledError:
            reason = "closed by client"
        finally:
            self._shutdown(ConnectionClosed(reason, retryable=retryable))
            self._writer.close()

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None and not stream._head.done():
                status = 0
                headers: list[tuple[str, str]] = []
                for raw_name, raw_value in event.headers or []:
                    name, value = _text(raw_name), _text(raw_value)
                    if name == ":status":
                        status = int(value)
                    elif not name.startswith(":"):
                        headers.append((name, value))
                stream._head.set_result(ResponseHead(status, headers))
        elif isinstance(event, h2.events.DataReceived):
            stream = self._streams.get(event.stream_id)
            flow_len = event.flow_controlled_length or 0
            if stream is None or stream.remote_closed:
                self._ack(event.stream_id, flow_len)  # nobody will read it: return the window
            elif event.data:
                stream._push((event.data, flow_len))
            else:
                self._ack(event.stream_id, flow_len)
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.trailers = [(_text(k), _text(v)) for k, v in event.headers or []]
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                if not stream._head.done():
                    stream._fail(TransportError("stream ended without response headers"))
                else:
                    stream.remote_closed = True
                    stream._push(None)
                self._forget_if_done(stream)
        elif isinstance(event, h2.events.StreamReset):
            stream = self._streams.pop(event.stream_id, None)
            self._slot_freed.set()
            if stream is not None:
                if stream.remote_closed:
                    # RST_STREAM(NO_ERROR) after a complete response just tells us to
                    # stop uploading (RFC 9113 8.1); the body already read stays valid.
                    stream.local_closed = True
                    stream.error = StreamReset(event.stream_id, event.error_code or 0)
                    stream._window_changed.set()
                else:
                    stream._fail(StreamReset(event.stream_id, event.error_code or 0))
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            if isinstance(event, h2.events.WindowUpdated) and event.stream_id:
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream._window_changed.set()
            else:
                for stream in self._streams.values():
                    stream._window_changed.set()
                self._slot_freed.set()
        elif isinstance(event, h2.events.PingAckReceived):
            fut = self._pings.get(event.ping_data or b"")
            if fut is not None and not fut.done():
                fut.set_result(None)
        # PingReceived (h2 answers it itself), SettingsAcknowledged, priority and
        # informational responses need no action from a CIC client.

    def _shutdown(self, exc: ConnectionClosed) -> None:
        if self._closed is not None:
            return
        self._closed = exc
        for stream in list(self._streams.values()):
            stream._fail(exc)
        self._streams.clear()
        for fut in self._pings.values():
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()
        self._slot_freed.set()
        self._closed_event.set()
        log.debug("h2 connection %s closed: %s", self.authority, exc.reason)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class FrameSplitter:
    """Cuts a byte stream into whole HTTP/2 frames (9-byte header, 24-bit length)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        start = 0
        while len(self._buffer) - start >= 9:
            end = start + 9 + int.from_bytes(self._buffer[start : start + 3], "big")
            if end > len(self._buffer):
                break
            frames.append(bytes(self._buffer[start:end]))
            start = end
        del self._buffer[:start]
        return frames
