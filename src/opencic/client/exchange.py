"""One ``POST /v1/events`` exchange: stream the multipart request, read the response.

Full duplex: the body (JSON ``metadata`` part, then 200 ms ``audio`` parts) is written
by a task while the response is read, so directives (and StopCapture on the
downchannel) are handled while audio still streams (B-AU-03, B-SR-02).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence

from opencic.protocol.errors import BadRequest
from opencic.protocol.event_stream import ResponseStreamParser
from opencic.protocol.messages import Event
from opencic.protocol.multipart_writer import MultipartWriter

from .connection import HTTP2Connection, HTTP2Stream, ResponseHead
from .dispatch import Dispatcher
from .errors import TransportError
from .models import EventResponse, exception_description, rechunk

log = logging.getLogger("opencic.client")


class ReplayableAudio:
    """Audio parts that can be sent twice: a 412 makes us resend the event (B-EV-10).

    Parts are recorded as they are pulled from the source, so a second pass replays
    them and then continues with the live source.
    """

    def __init__(self, audio: AsyncIterable[bytes]) -> None:
        self._source: AsyncIterator[bytes] | None = rechunk(audio).__aiter__()
        self._recorded: list[bytes] = []

    async def parts(self) -> AsyncIterator[bytes]:
        i = 0
        while True:
            if i < len(self._recorded):
                yield self._recorded[i]
                i += 1
                continue
            if self._source is None:
                return
            try:
                chunk = await self._source.__anext__()
            except StopAsyncIteration:
                self._source = None
                return
            self._recorded.append(chunk)


async def exchange(
    conn: HTTP2Connection,
    path: str,
    headers: Sequence[tuple[str, str]],
    event: Event,
    audio: ReplayableAudio | None,
    capture_stop: asyncio.Event,
    on_head: Callable[[ResponseHead], None],
    dispatcher: Dispatcher,
    source: str,
) -> EventResponse:
    """Send ``event`` (and audio) and read the whole response."""
    writer = MultipartWriter(subtype="form-data")  # B-EV-01: form-data on requests
    stream = await conn.request("POST", path, [*headers, ("content-type", writer.content_type)])
    done = asyncio.Event()  # the response is complete: stop uploading
    upload = asyncio.create_task(_upload(stream, writer, event, audio, (capture_stop, done)))
    try:
        head = await stream.response()
        on_head(head)
        return await read_response(stream, head, source, dispatcher)
    except TransportError:
        # If the audio source itself failed, that is the error worth reporting.
        if upload.done() and not upload.cancelled():
            error = upload.exception()
            if error is not None and not isinstance(error, TransportError):
                raise error from None
        raise
    finally:
        done.set()
        # Exception, not BaseException: a cancellation of the caller must propagate.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(upload), 1.0)
        if not upload.done():
            upload.cancel()
        elif not upload.cancelled():
            upload.exception()  # consumed: transport errors show up on the response
        if not stream.local_closed:
            stream.reset()


async def _upload(
    stream: HTTP2Stream,
    writer: MultipartWriter,
    event: Event,
    audio: ReplayableAudio | None,
    stops: tuple[asyncio.Event, ...],
) -> None:
    try:
        await stream.send(writer.event_part(event.to_json()))  # B-MP-05: metadata first
        if audio is not None:
            async for part in audio.parts():
                # StopCapture (B-SR-02) or a finished response ends the upload.
                if any(s.is_set() for s in stops):
                    break
                await stream.send(writer.audio_part(part))  # one part per 200 ms (B-AU-02)
        await stream.send(writer.close(), end_stream=True)
    except TransportError:
        raise
    except Exception:
        stream.reset()  # makes the response side fail instead of waiting for audio
        raise


async def read_response(
    stream: HTTP2Stream, head: ResponseHead, source: str, dispatcher: Dispatcher
) -> EventResponse:
    """Read a response body; directives of a 2xx body also go to the message queue."""
    response = EventResponse(head.status)
    content_type = head.get("content-type") or ""
    if not content_type.lower().startswith("multipart/"):
        body = await stream.read()
        if not response.is_success and body:
            response.description = body.decode("utf-8", "replace")[:500]
        return response
    enqueue = response.is_success  # an error body carries System.Exception, not work
    if enqueue:
        dispatcher.queue.open_source(source)
    try:
        parser = ResponseStreamParser(content_type)
        async for chunk in stream:
            dispatcher.absorb(parser.feed(chunk), source, response, enqueue)
        dispatcher.absorb(parser.close(), source, response, enqueue)
    except BadRequest as exc:
        log.warning("malformed response body in %s: %s", source, exc.description)
        response.malformed.append(exc.description)
    finally:
        if enqueue:
            dispatcher.end_source(source)
    if not response.is_success:
        response.description = exception_description(response.directives)
    return response
