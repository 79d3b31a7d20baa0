"""The downchannel stream: open it, wait for ``Clova.Hello``, read it until it ends.

Keeping one open (reconnects, backoff, 412 repair) is :class:`~.sdk.CICClient`'s job;
this module only handles one ``GET /v1/directives`` stream at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from opencic.protocol.errors import BadRequest
from opencic.protocol.event_stream import DirectiveReceived, ResponseStreamParser

from .connection import HTTP2Connection, HTTP2Stream
from .dispatch import Dispatcher
from .errors import AuthenticationFailed, ConnectionClosed, RequestFailed, TransportError
from .exchange import read_response

log = logging.getLogger("opencic.client")


@dataclass(slots=True, eq=False)
class Downchannel:
    conn: HTTP2Connection
    stream: HTTP2Stream
    parser: ResponseStreamParser
    body: AsyncIterator[bytes]  # the stream's body iterator, already past Clova.Hello
    source: str
    established_at: float

    @property
    def alive(self) -> bool:
        return not self.stream.remote_closed and not self.conn.is_closed


async def open_downchannel(
    conn: HTTP2Connection,
    path: str,
    headers: Sequence[tuple[str, str]],
    dispatcher: Dispatcher,
    source: str,
    timeout: float,
) -> Downchannel:
    """``GET /v1/directives`` and read up to ``Clova.Hello`` (B-DC-01/02).

    Raises :class:`AuthenticationFailed` (401), :class:`RequestFailed` (other status,
    e.g. 429 from B-DC-05) or a :class:`TransportError`.
    """
    stream = await conn.request("GET", path, headers, end_stream=True)
    try:
        async with asyncio.timeout(timeout):
            head = await stream.response()
            if head.status != 200:
                description = None
                with contextlib.suppress(Exception):
                    error_body = await read_response(stream, head, "error", dispatcher)
                    description = error_body.description
                error = AuthenticationFailed if head.status == 401 else RequestFailed
                raise error(head.status, description)
            try:
                parser = ResponseStreamParser(head.get("content-type") or "")
            except BadRequest as exc:
                raise TransportError(f"downchannel is not multipart: {exc}") from None
            dispatcher.queue.open_source(source)
            body = stream.__aiter__()
            while True:
                try:
                    chunk = await body.__anext__()
                except StopAsyncIteration:
                    raise ConnectionClosed("downchannel ended before Clova.Hello") from None
                items = parser.feed(chunk)
                dispatcher.absorb(items, source, None, True)
                if any(isinstance(i, DirectiveReceived)
                       and i.directive.qualified_name == "Clova.Hello" for i in items):
                    return Downchannel(conn, stream, parser, body, source, time.monotonic())
    except BaseException:
        stream.reset()
        raise


async def pump(dc: Downchannel, dispatcher: Dispatcher) -> str:
    """Feed downchannel bytes to the queue until the stream ends; returns why it ended."""
    try:
        async for chunk in dc.body:
            dispatcher.absorb(dc.parser.feed(chunk), dc.source, None, True)
        dispatcher.absorb(dc.parser.close(), dc.source, None, True)
        return "server closed the downchannel"
    except BadRequest as exc:
        dc.stream.reset()
        return f"malformed downchannel body: {exc.description}"
    except TransportError as exc:
        return str(exc)
    except Exception as exc:  # a bug must not end the client's upkeep loop
        log.exception("downchannel reader failed")
        dc.stream.reset()
        return f"internal error: {exc!r}"
    finally:
        dispatcher.end_source(dc.source)
