"""Sans-I/O readers of CIC bodies built on :class:`MultipartParser`.

* :class:`EventRequestParser` (server): a ``POST /v1/events`` body is the JSON event
  first, then optional audio parts (B-EV-01, B-MP-05, B-AU-02). The event is handed
  over as soon as its part ends; audio bytes stream through as they arrive.
* :class:`ResponseStreamParser` (client): an event response or the never-ending
  downchannel. Every directive is its own JSON part (B-MP-06, B-MP-09); binary parts are
  attachments found by Content-ID (B-MP-07, B-MP-08). A part that cannot be understood
  is reported as :class:`MalformedPart` and skipped: the other directives of the stream
  are still delivered (B-UN-01).

Like the multipart parser, an error found after some items of the same ``feed`` is
raised by the next ``feed``/``close`` so that those items are not lost.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from .errors import BadRequest
from .messages import Attachment, Directive, Event, parse_directive_json, parse_event_bytes
from .multipart import (
    DEFAULT_LIMITS,
    OCTET_STREAM,
    MultipartEvent,
    MultipartLimits,
    MultipartParser,
    PartData,
    PartEnded,
    PartStarted,
    parse_content_type,
)

DEFAULT_MAX_JSON_BYTES = 256 * 1024


# ------------------------------------------------------------------ server side


@dataclass(frozen=True, slots=True)
class EventReceived:
    event: Event


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Bytes of an audio part as they arrive (not aligned to parts or samples).

    ``part`` is the index of the multipart part they belong to (1 = the first audio
    part), so a consumer can check each part on its own (B-AU-02: whole samples).
    """

    data: bytes
    part: int = field(default=1, compare=False)


@dataclass(frozen=True, slots=True)
class AudioEnded:
    """The body is complete: no more audio will come (sent even when there was none)."""


EventRequestItem = EventReceived | AudioChunk | AudioEnded


class EventRequestParser:
    """``POST /v1/events`` body -> EventReceived, then AudioChunk..., then AudioEnded.

    Only the JSON part is buffered (up to ``max_json_bytes``); audio is never held.
    Raises :class:`BadRequest` for a bad Content-Type (in ``__init__``), a body without
    parts, a first part that is not JSON, a second JSON part, an oversized or invalid
    JSON message, and any multipart error.
    """

    def __init__(
        self,
        content_type: str | None,
        limits: MultipartLimits = DEFAULT_LIMITS,
        max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
        *,
        lenient_close: bool = False,
    ) -> None:
        _, boundary = parse_content_type(content_type)
        self._parser = MultipartParser(boundary, limits, lenient_close=lenient_close)
        self.max_json_bytes = max_json_bytes
        self._json: list[bytes] | None = None  # chunks of the JSON part while it arrives
        self._json_size = 0
        self._parts = 0
        self._part_index = 0
        self._pending: BadRequest | None = None
        self.audio_bytes = 0

    def feed(self, data: bytes) -> list[EventRequestItem]:
        if self._pending is not None:
            raise self._pending
        try:
            events = self._parser.feed(data)
        except BadRequest as exc:
            self._pending = exc
            raise
        return self._handle(events)

    def close(self) -> list[EventRequestItem]:
        """End of the request body: raises :class:`BadRequest` when it is truncated."""
        if self._pending is not None:
            raise self._pending
        try:
            events = self._parser.close()
        except BadRequest as exc:
            self._pending = exc
            raise
        return self._handle(events)

    def _handle(self, events: list[MultipartEvent]) -> list[EventRequestItem]:
        out: list[EventRequestItem] = []
        try:
            for ev in events:
                if isinstance(ev, PartData):
                    self._on_data(ev.data, out)
                elif isinstance(ev, PartStarted):
                    self._on_start(ev)
                elif isinstance(ev, PartEnded):
                    if ev.index == 0:
                        self._on_json_end(out)
                elif self._parts == 0:  # BodyEnded
                    raise BadRequest(
                        "the multipart body has no parts; the first part must be the "
                        "JSON event message (B-EV-01)"
                    )
                else:
                    out.append(AudioEnded())
        except BadRequest as exc:
            self._pending = exc
            if not out:
                raise
        return out

    def _on_start(self, part: PartStarted) -> None:
        self._parts += 1
        self._part_index = part.index
        if part.index == 0:
            if not part.is_json:
                raise BadRequest(
                    "the first part must be the JSON event message (application/json), "
                    f"not {part.content_type!r} (B-EV-01, B-MP-05)"
                )
            self._json = []
        elif part.is_json:
            raise BadRequest(
                f"part {part.index} is a second JSON part: an event request carries one "
                "JSON message, further parts must be application/octet-stream audio (B-EV-01)"
            )

    def _on_data(self, data: bytes, out: list[EventRequestItem]) -> None:
        if self._json is None:  # an audio part: stream it through
            self.audio_bytes += len(data)
            out.append(AudioChunk(data, self._part_index))
            return
        self._json_size += len(data)
        if self._json_size > self.max_json_bytes:
            raise BadRequest(f"JSON part exceeds {self.max_json_bytes} bytes")
        self._json.append(data)

    def _on_json_end(self, out: list[EventRequestItem]) -> None:
        chunks, self._json = self._json or [], None
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        out.append(EventReceived(parse_event_bytes(data)))


# ------------------------------------------------------------------ client side


@dataclass(frozen=True, slots=True)
class DirectiveReceived:
    directive: Directive


@dataclass(frozen=True, slots=True)
class AttachmentReceived:
    attachment: Attachment


@dataclass(frozen=True, slots=True)
class MalformedPart:
    """A part that was skipped; the stream goes on (B-UN-01)."""

    index: int
    description: str


@dataclass(frozen=True, slots=True)
class ResponseEnded:
    """The multipart body ended (never on a healthy downchannel)."""


ResponseItem = DirectiveReceived | AttachmentReceived | MalformedPart | ResponseEnded

# A downchannel lives for days: no limit on the number of parts.
STREAM_LIMITS = MultipartLimits(max_parts=sys.maxsize)

_SKIP, _JSON, _BINARY = 0, 1, 2


class ResponseStreamParser:
    """Event response or downchannel bytes -> directives and attachments, part by part.

    A part is a directive when it is JSON, or when it has neither Content-Type nor
    Content-ID and parses as JSON (ambiguity #39). Other parts with a Content-ID are
    attachments (Content-ID with or without ``<>``, ambiguity #3); both are buffered
    per part, up to ``max_json_bytes`` and ``max_attachment_bytes``.
    """

    def __init__(
        self,
        content_type: str | None,
        limits: MultipartLimits = STREAM_LIMITS,
        max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
        max_attachment_bytes: int = 64 * 1024 * 1024,
        *,
        lenient_close: bool = False,
    ) -> None:
        _, boundary = parse_content_type(content_type)
        self._parser = MultipartParser(boundary, limits, lenient_close=lenient_close)
        self.max_json_bytes = max_json_bytes
        self.max_attachment_bytes = max_attachment_bytes
        self._part: PartStarted | None = None
        self._kind = _SKIP
        self._chunks: list[bytes] = []
        self._size = 0

    def feed(self, data: bytes) -> list[ResponseItem]:
        """Multipart errors (not part contents) raise :class:`BadRequest`."""
        return self._handle(self._parser.feed(data))

    def close(self) -> list[ResponseItem]:
        """Raises :class:`BadRequest` when the body ends without its close delimiter."""
        return self._handle(self._parser.close())

    def _handle(self, events: list[MultipartEvent]) -> list[ResponseItem]:
        out: list[ResponseItem] = []
        for ev in events:
            if isinstance(ev, PartData):
                self._on_data(ev.data, out)
            elif isinstance(ev, PartStarted):
                self._on_start(ev, out)
            elif isinstance(ev, PartEnded):
                self._on_end(out)
            else:
                out.append(ResponseEnded())
        return out

    def _on_start(self, part: PartStarted, out: list[ResponseItem]) -> None:
        self._part, self._chunks, self._size = part, [], 0
        ct, cid = part.content_type, part.content_id
        if part.is_json or (not ct and cid is None):
            self._kind = _JSON
        elif cid is not None:
            self._kind = _BINARY
        else:
            self._kind = _SKIP
            out.append(MalformedPart(part.index, f"{ct} part without Content-ID; skipped"))

    def _on_data(self, data: bytes, out: list[ResponseItem]) -> None:
        if self._kind == _SKIP or self._part is None:
            return
        self._size += len(data)
        limit = self.max_json_bytes if self._kind == _JSON else self.max_attachment_bytes
        if self._size > limit:
            what = "JSON" if self._kind == _JSON else "attachment"
            out.append(MalformedPart(self._part.index, f"{what} part exceeds {limit} bytes"))
            self._kind, self._chunks = _SKIP, []
            return
        self._chunks.append(data)

    def _on_end(self, out: list[ResponseItem]) -> None:
        part, kind, chunks = self._part, self._kind, self._chunks
        self._part, self._kind, self._chunks = None, _SKIP, []
        if part is None or kind == _SKIP:
            return
        data = b"".join(chunks)
        if kind == _BINARY:
            assert part.content_id is not None
            attachment = Attachment(part.content_id, data, part.content_type or OCTET_STREAM)
            out.append(AttachmentReceived(attachment))
            return
        try:
            directive = parse_directive_json(json.loads(data))
        except UnicodeDecodeError:
            out.append(MalformedPart(part.index, "JSON part is not valid UTF-8"))
        except json.JSONDecodeError as exc:
            out.append(MalformedPart(part.index, f"JSON part is not valid JSON: {exc.msg}"))
        except RecursionError:
            out.append(MalformedPart(part.index, "JSON part is nested too deeply"))
        except BadRequest as exc:
            out.append(MalformedPart(part.index, exc.description))
        else:
            out.append(DirectiveReceived(directive))
