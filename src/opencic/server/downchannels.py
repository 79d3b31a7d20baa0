"""Which device has which downchannel, and the 429 rate rule.

A downchannel is one long-lived ``GET /v1/directives`` stream (B-DC-01..04). Its ASGI
task waits on :attr:`Downchannel.queue`; anything that wants to push a directive puts
already-framed bytes there. The registry is per process: the delivery layer routes a
push to the process that holds the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..protocol.messages import Attachment, Directive, dumps
from ..protocol.multipart_writer import MultipartWriter
from .limits import RateLimiter

ConnectionKey = tuple[str, int | str]

_CLOSE = b""  # sentinel in a downchannel queue: end the stream cleanly


@dataclass(eq=False, slots=True)
class Downchannel:
    device_id: str
    connection: ConnectionKey
    # SHA-256 of the access token that opened it: the stream lives only as long as the
    # token does (the token sweep in housekeeping.py ends it once revoked or expired).
    token_hash: str = ""
    writer: MultipartWriter = field(default_factory=MultipartWriter)
    # Framed bytes to send; b"" = end the stream cleanly; None = the device is gone.
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    opened_at: float = field(default_factory=time.monotonic)
    closed: bool = False

    def push_bytes(self, data: bytes) -> None:
        if not self.closed and data:
            self.queue.put_nowait(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(_CLOSE)

    def gone(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)


def encode_parts(
    directives: Iterable[Directive], attachments: Iterable[Attachment] = ()
) -> list[tuple[bytes, str, str | None, str | None]]:
    """Serialise once, frame per stream: (body, content type, part name, content id)."""
    parts: list[tuple[bytes, str, str | None, str | None]] = []
    for d in directives:
        name = f"{d.header.name[:1].lower()}{d.header.name[1:]}Directive-{d.header.message_id}"
        parts.append((dumps(d.to_json()), "application/json; charset=UTF-8", name, None))
    for a in attachments:
        parts.append((a.data, a.content_type, f"attachment-{a.content_id}", a.content_id))
    return parts


def frame(writer: MultipartWriter, parts: list[tuple[bytes, str, str | None, str | None]]) -> bytes:
    return b"".join(
        writer.part(body, content_type=ctype, name=name, content_id=cid)
        for body, ctype, name, cid in parts
    )


class DownchannelRegistry:
    def __init__(self) -> None:
        self._by_device: dict[str, Downchannel] = {}

    def __len__(self) -> int:
        return len(self._by_device)

    def open(self, device_id: str, connection: ConnectionKey, token_hash: str = "") -> Downchannel:
        """Register a new downchannel; the device's previous one is closed (B-DC-04)."""
        previous = self._by_device.get(device_id)
        if previous is not None:
            previous.close()
        channel = Downchannel(device_id, connection, token_hash)
        self._by_device[device_id] = channel
        return channel

    def release(self, channel: Downchannel) -> None:
        channel.closed = True
        if self._by_device.get(channel.device_id) is channel:
            del self._by_device[channel.device_id]

    def get(self, device_id: str) -> Downchannel | None:
        return self._by_device.get(device_id)

    def accepts_event(self, device_id: str, connection: ConnectionKey, *, strict: bool) -> bool:
        """B-EV-02: the device needs a live downchannel, on this connection when strict."""
        channel = self._by_device.get(device_id)
        if channel is None or channel.closed:
            return False
        return channel.connection == connection or not strict

    def push(
        self, device_id: str, directives: Iterable[Directive], attachments: Iterable[Attachment] = ()
    ) -> bool:
        channel = self._by_device.get(device_id)
        if channel is None or channel.closed:
            return False
        channel.push_bytes(frame(channel.writer, encode_parts(directives, attachments)))
        return True

    def broadcast(self, directives: list[Directive]) -> int:
        """Push the same directives to every open downchannel; JSON is encoded once."""
        parts = encode_parts(directives)
        count = 0
        for channel in list(self._by_device.values()):
            if not channel.closed:
                channel.push_bytes(frame(channel.writer, parts))
                count += 1
        return count

    def token_hashes(self) -> list[str]:
        """The distinct access-token hashes the open downchannels were opened with."""
        return list({c.token_hash for c in self._by_device.values() if c.token_hash and not c.closed})

    def close_tokens(self, dead: set[str]) -> list[str]:
        """Ends (cleanly) the downchannels opened with any of these token hashes;
        returns their device ids. The device reconnects and gets 401 (B-CN-04/05)."""
        closed = []
        for channel in list(self._by_device.values()):
            if channel.token_hash in dead and not channel.closed:
                channel.close()
                closed.append(channel.device_id)
        return closed

    def close_all(self) -> None:
        for channel in list(self._by_device.values()):
            channel.close()


class DownchannelRateLimiter(RateLimiter):
    """B-DC-05 / ambiguity #7: more than ``max_requests`` downchannel requests of one
    device within ``window`` seconds are refused with 429. Only accepted requests count,
    so a device that backs off gets back in once the window has passed."""
