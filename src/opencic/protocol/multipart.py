"""Sans-I/O MIME multipart codec for CIC bodies (B-MP-01..09).

:class:`MultipartParser` is fed bytes in arbitrary pieces and returns typed events, in
the style of h11: ``PartStarted`` as soon as a header block is complete, ``PartData``
as body bytes arrive (audio streams through, it is never buffered whole), ``PartEnded``
as soon as the delimiter after a part has been seen (a downchannel body never ends, so
a directive must not wait for the next part) and ``BodyEnded``.

The writer is in :mod:`opencic.protocol.multipart_writer`.

Errors caused by the peer are :class:`BadRequest` with a description fit for a
``System.Exception``. When an error is found after some events of the same ``feed``
call, those events are returned and the error is raised by the next ``feed``/``close``,
so the events seen before an error never depend on how the input was split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from .errors import BadRequest

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class MultipartLimits:
    max_header_bytes: int = 16 * 1024  # all headers of one part
    max_parts: int = 10_000  # parts per body (audio streams many 200 ms parts)
    max_preamble_bytes: int = 4096


DEFAULT_LIMITS = MultipartLimits()


# ------------------------------------------------------------------ header values

# RFC 2046 5.1.1: 1-70 characters from bchars, the last one not a space.
_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
# A parameter: name=token or name="quoted string"; junk between parameters is skipped.
_PARAM_RE = re.compile(r';\s*([^\s;=]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_QUOTED_PAIR_RE = re.compile(r"\\(.)")
_TOKEN_RE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]*")


def _split_header_value(value: str) -> tuple[str, dict[str, str]]:
    """``type/sub; a=1; B="x"`` -> (``type/sub`` lower-cased, {``a``: ``1``, ``b``: ``x``})."""
    main = value.split(";", 1)[0]
    params: dict[str, str] = {}
    for m in _PARAM_RE.finditer(value, len(main)):
        raw = m.group(2).strip()
        if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
            raw = _QUOTED_PAIR_RE.sub(r"\1", raw[1:-1])
        params.setdefault(m.group(1).lower(), raw)  # first one wins, like the media type
    return main.strip().lower(), params


def _check_boundary(boundary: str) -> None:
    if not _BOUNDARY_RE.fullmatch(boundary):
        raise BadRequest(
            f"invalid multipart boundary {boundary[:80]!r}: RFC 2046 allows 1-70 characters "
            "from [0-9A-Za-z'()+_,-./:=? ], not ending in a space"
        )


def parse_content_type(value: str | None) -> tuple[str, str]:
    """Media type (lower-cased) and boundary of a multipart Content-Type (B-MP-01, B-MP-03).

    Any ``multipart/*`` is accepted (ambiguity #1), as are a quoted boundary, a trailing
    ``;`` and whitespace (ambiguity #2) and parameter names in any case.
    """
    if value is None or not value.strip():
        raise BadRequest(
            "Content-Type is missing; expected multipart/form-data; boundary=... (B-MP-01)"
        )
    media_type, params = _split_header_value(value)
    if not media_type.startswith("multipart/") or media_type == "multipart/":
        raise BadRequest(
            f"Content-Type {media_type[:80]!r} is not multipart; expected "
            "multipart/form-data or multipart/related with a boundary (B-MP-01)"
        )
    boundary = params.get("boundary")
    if not boundary:
        raise BadRequest(f"Content-Type {media_type} has no boundary parameter (B-MP-01)")
    _check_boundary(boundary)
    return media_type, boundary


class _PartInfo:
    """What callers want to know about a part, derived from its headers."""

    __slots__ = ()
    index: int
    headers: dict[str, str]

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters ('' if absent)."""
        value = self.headers.get("content-type")
        return value.split(";", 1)[0].strip().lower() if value else ""

    @property
    def name(self) -> str | None:
        """The ``name`` of Content-Disposition; internal only (ambiguity #4, B-MP-06)."""
        value = self.headers.get("content-disposition")
        return _split_header_value(value)[1].get("name") if value else None

    @property
    def content_id(self) -> str | None:
        """Content-ID without angle brackets (accepted both ways, ambiguity #3)."""
        value = self.headers.get("content-id", "").strip()
        if value.startswith("<") and value.endswith(">"):
            value = value[1:-1].strip()
        return value or None

    @property
    def is_json(self) -> bool:
        """application/json (or +json); a first part without Content-Type too (#39)."""
        ct = self.content_type
        if ct:
            return ct == "application/json" or ct.endswith("+json")
        return self.index == 0


# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class PartStarted(_PartInfo):
    index: int
    headers: dict[str, str]  # names lower-cased


@dataclass(frozen=True, slots=True)
class PartData:
    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnded:
    index: int


@dataclass(frozen=True, slots=True)
class BodyEnded:
    pass


MultipartEvent = PartStarted | PartData | PartEnded | BodyEnded


@dataclass(frozen=True, slots=True)
class Part(_PartInfo):
    """A whole part, from :func:`collect_parts`."""

    headers: dict[str, str]
    body: bytes
    index: int = 0


# ------------------------------------------------------------------ parser

_PREAMBLE = 0  # looking for the first "--boundary"
_AFTER_DELIMITER = 1  # "--boundary" seen: "--", or padding and a line end follow
_HEADERS = 2  # collecting a header block
_BODY = 3  # streaming a part body, looking for "\n--boundary"
_CLOSE_LINE = 4  # "--boundary--" seen: padding and line end of that line
_EPILOGUE = 5  # after the close line: a real epilogue, or another part (ambiguity #6)?
_DONE = 6
_FAILED = 7

_CR, _LF, _DASH = 13, 10, 45
_PADDING = (32, 9)  # transport padding after a delimiter (RFC 2046): space, tab
_EOL, _MORE, _OTHER = 0, 1, 2  # results of _skip_to_line_end
# How much of an epilogue to look at when deciding whether it starts a header line.
_EPILOGUE_PEEK = 256
# Bytes that may form a header name (RFC 7230 tchar); deleted to check a name.
_TCHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class MultipartParser:
    """Incremental multipart parser: ``feed(bytes) -> events``, then ``close()``.

    Accepted besides RFC 2046: LF-only line ends (headers and delimiters), a preamble
    (up to ``max_preamble_bytes``), transport padding after a delimiter, parts without
    headers, Content-ID with or without ``<>``. After ``--boundary--`` the parser looks
    at the next line before it reports :class:`BodyEnded` (at the latest on
    ``close()``): if another part starts there (a delimiter or a ``Content-*:`` line)
    that is an error, unless ``lenient_close`` is set, in which case the close delimiter is
    read as a plain one (ambiguity #6). Otherwise the epilogue is ignored, as is
    anything fed after :class:`BodyEnded`.

    The buffer is scanned by offset and compacted once per ``feed``, so a body is not
    copied once per part; in a body only a possible delimiter prefix is held back.
    """

    def __init__(
        self,
        boundary: str,
        limits: MultipartLimits = DEFAULT_LIMITS,
        *,
        lenient_close: bool = False,
    ) -> None:
        _check_boundary(boundary)
        self.boundary = boundary
        self.limits = limits
        self.lenient_close = lenient_close
        self._dash = b"--" + boundary.encode("ascii")
        self._lf_dash = b"\n" + self._dash  # a CR before it is optional (LF-only bodies)
        self._buf = b""
        self._pos = 0  # everything before this offset of _buf is consumed
        self._state = _PREAMBLE
        self._scan = 0  # header search resumes here (relative to the header block)
        self._preamble_seen = 0
        self._index = 0  # number of parts started so far
        self._after_close = False  # reading a delimiter found right after "--b--"
        self._padded = False  # transport padding seen after the current delimiter
        self._pending: BadRequest | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes held back (an undecided delimiter prefix, an incomplete header block)."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> list[MultipartEvent]:
        if self._pending is not None:
            self._fail()
        if self._state == _DONE:
            return []  # epilogue
        if data:
            self._buf = self._buf + bytes(data) if self._buf else bytes(data)
        events: list[MultipartEvent] = []
        try:
            self._run(events)
        except BadRequest as exc:
            self._pending = exc
            if not events:
                self._fail()
        return events

    def close(self) -> list[MultipartEvent]:
        """End of input: raises :class:`BadRequest` when the body is truncated."""
        if self._pending is not None:
            self._fail()
        state = self._state
        if state == _DONE:
            return []
        if state in (_CLOSE_LINE, _EPILOGUE) or (state == _AFTER_DELIMITER and self._after_close):
            events: list[MultipartEvent] = []
            self._finish(events)
            return events
        close = self._dash.decode("ascii") + "--"
        if state == _PREAMBLE:
            what = "no delimiter line found" if self._buf or self._preamble_seen else "empty body"
            msg = f"missing opening delimiter {close[:-2]!r}: {what} (B-MP-02)"
        elif state == _HEADERS:
            msg = f"body truncated inside the headers of part {self._index}"
        elif state == _BODY:
            msg = f"body truncated inside part {self._index - 1}: no closing {close!r} (B-MP-02)"
        else:
            msg = f"body truncated after a delimiter: no closing {close!r} (B-MP-02)"
        self._pending = BadRequest(msg)
        self._fail()

    def _fail(self) -> NoReturn:
        assert self._pending is not None
        self._state = _FAILED
        self._buf = b""
        self._pos = 0
        raise self._pending

    # Each step consumes what it can and says whether the state moved on.
    def _run(self, events: list[MultipartEvent]) -> None:
        while True:
            state = self._state
            if state == _BODY:
                progressed = self._step_body(events)
            elif state == _HEADERS:
                progressed = self._step_headers(events)
            elif state == _AFTER_DELIMITER:
                progressed = self._step_after_delimiter(events)
            elif state == _PREAMBLE:
                progressed = self._step_preamble()
            elif state == _CLOSE_LINE:
                progressed = self._step_close_line(events)
            elif state == _EPILOGUE:
                progressed = self._step_epilogue(events)
            else:
                progressed = False
            if not progressed:
                break
        if self._pos:
            self._buf = self._buf[self._pos :]
            self._pos = 0

    def _step_preamble(self) -> bool:
        buf, dash = self._buf, self._dash
        i = buf.find(dash, self._pos)
        while i >= 0:
            # A delimiter starts a line: at the very start of the body or after a LF.
            if (i == 0 and self._preamble_seen == 0) or (i > 0 and buf[i - 1] == _LF):
                self._pos = i + len(dash)
                self._state = _AFTER_DELIMITER
                self._padded = False
                return True
            i = buf.find(dash, i + 1)
        # Drop all but a tail that may still hold the start of "\n--boundary".
        cut = len(buf) - len(dash)
        if cut > self._pos:
            self._preamble_seen += cut - self._pos
            self._pos = cut
        if self._preamble_seen > self.limits.max_preamble_bytes:
            raise BadRequest(
                f"missing opening delimiter {dash.decode('ascii')!r}: not found in the first "
                f"{self.limits.max_preamble_bytes} bytes (B-MP-02)"
            )
        return False

    def _skip_to_line_end(self) -> int:
        """Skip transport padding and one CRLF/LF: _EOL, _MORE (need bytes) or _OTHER."""
        buf, pos = self._buf, self._pos
        n = len(buf)
        while pos < n and buf[pos] in _PADDING:
            pos += 1
        self._pos = pos
        if pos >= n:
            return _MORE
        c = buf[pos]
        if c == _LF:
            self._pos = pos + 1
            return _EOL
        if c == _CR:
            if pos + 1 >= n:
                return _MORE
            if buf[pos + 1] == _LF:
                self._pos = pos + 2
                return _EOL
        return _OTHER

    def _step_after_delimiter(self, events: list[MultipartEvent]) -> bool:
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            return False
        if buf[pos] == _DASH and not self._padded:  # "--" must follow the boundary at once
            if pos + 1 >= len(buf):
                return False
            if buf[pos + 1] == _DASH:
                self._pos = pos + 2
                self._state = _CLOSE_LINE
                return True
            found, bad = _OTHER, buf[pos : pos + 2]
        else:
            found = self._skip_to_line_end()
            if found == _MORE:
                self._padded = True  # the padding is dropped from the buffer
                return False
            bad = buf[self._pos : self._pos + 1]  # only what every split has seen
        if found == _OTHER:
            if self._after_close:
                return self._finish(events)  # "--boundary<junk>" in an epilogue: ignore it
            raise BadRequest(
                f"malformed delimiter line: {self._dash.decode('ascii')!r} is followed by "
                f"{bad!r} instead of a line end or '--' (B-MP-02)"
            )
        if self._after_close:
            self._reopen_after_close()
        self._start_headers()
        return True

    def _reopen_after_close(self) -> None:
        # Ambiguity #6: Send_Event.md closes the body after the JSON part, then goes on.
        if not self.lenient_close:
            raise BadRequest(
                f"another part follows the close delimiter {self._dash.decode('ascii') + '--'!r}; "
                "separate parts with a plain delimiter (B-MP-02)"
            )
        self._after_close = False

    def _start_headers(self) -> None:
        if self._index >= self.limits.max_parts:
            raise BadRequest(f"the multipart body has more than {self.limits.max_parts} parts")
        self._state = _HEADERS
        self._scan = 0

    def _step_headers(self, events: list[MultipartEvent]) -> bool:
        buf, pos = self._buf, self._pos
        n = len(buf)
        if pos >= n:
            return False
        first = buf[pos]
        if first == _LF:
            block, rest = b"", pos + 1  # a part without headers
        elif first == _CR and pos + 1 < n and buf[pos + 1] == _LF:
            block, rest = b"", pos + 2
        elif first == _CR and pos + 1 >= n:
            return False
        else:
            # Bounded searches: never scan the (maybe large) body after the headers.
            start, limit = pos + self._scan, pos + self.limits.max_header_bytes + 3
            j = buf.find(b"\n\r\n", start, limit)
            i = buf.find(b"\n\n", start, j + 2 if j >= 0 else limit)
            if i < 0 and j < 0:
                if n - pos > self.limits.max_header_bytes:
                    self._header_overflow()
                self._scan = max(0, n - pos - 2)
                return False
            end, rest = (i, i + 2) if j < 0 or 0 <= i < j else (j, j + 3)
            if end - pos > self.limits.max_header_bytes:
                self._header_overflow()
            block = buf[pos:end]
        headers = _parse_header_block(block, self._index) if block else {}
        events.append(PartStarted(self._index, headers))
        self._index += 1
        self._pos = rest
        self._state = _BODY
        return True

    def _header_overflow(self) -> NoReturn:
        raise BadRequest(
            f"the headers of part {self._index} exceed {self.limits.max_header_bytes} bytes"
        )

    def _step_body(self, events: list[MultipartEvent]) -> bool:
        buf, pos, lf_dash = self._buf, self._pos, self._lf_dash
        i = buf.find(lf_dash, pos)
        if i >= 0:
            end = i - 1 if i > pos and buf[i - 1] == _CR else i
            if end > pos:
                events.append(PartData(buf[pos:end]))
            events.append(PartEnded(self._index - 1))
            self._pos = i + len(lf_dash)
            self._state = _AFTER_DELIMITER
            self._padded = False
            return True
        # Hand over everything except a tail that could begin "\r\n--boundary". The
        # boundary holds no CR/LF, so only the last LF (or a final CR) can start one.
        n = len(buf)
        hold = n
        lf = buf.rfind(b"\n", max(pos, n - len(lf_dash) + 1))
        if lf >= 0 and lf_dash.startswith(buf[lf:]):
            hold = lf - 1 if lf > pos and buf[lf - 1] == _CR else lf
        elif n > pos and buf[-1] == _CR:
            hold = n - 1
        if hold > pos:
            events.append(PartData(buf[pos:hold]))  # whole buf when pos == 0: no copy
            self._pos = hold
        return False

    def _step_close_line(self, events: list[MultipartEvent]) -> bool:
        found = self._skip_to_line_end()
        if found == _MORE:
            return False
        if found == _OTHER:
            return self._finish(events)  # junk on the close line: epilogue
        self._state = _EPILOGUE
        return True

    def _step_epilogue(self, events: list[MultipartEvent]) -> bool:
        buf, pos, dash = self._buf, self._pos, self._dash
        n = len(buf)
        if pos >= n:
            return False
        if buf.startswith(dash, pos):  # "--b--" CRLF "--b": a delimiter right after the close
            self._pos = pos + len(dash)
            self._after_close = True
            self._state = _AFTER_DELIMITER
            self._padded = False
            return True
        if n - pos < len(dash) and dash.startswith(buf[pos:]):
            return False  # could still become "--boundary"
        m = _TOKEN_RE.match(buf, pos, pos + _EPILOGUE_PEEK)
        end = m.end() if m else pos
        if end == n and end - pos < _EPILOGUE_PEEK:
            return False  # could still become "Header-Name:"
        # "--b--" CRLF "Content-Type: ...": a part. Other "Name:" lines are plain epilogue.
        if buf[end : end + 1] == b":" and buf[pos:end].lower().startswith(b"content-"):
            self._reopen_after_close()
            self._start_headers()
            return True
        return self._finish(events)

    def _finish(self, events: list[MultipartEvent]) -> bool:
        events.append(BodyEnded())
        self._state = _DONE
        self._buf = b""
        self._pos = 0
        return True


def _parse_header_block(block: bytes, index: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(b"\n"):
        name, colon, value = line.partition(b":")
        name = name.rstrip(b" \t")  # whitespace before the colon is tolerated
        if not colon or not name or name.translate(None, _TCHARS):
            line = line.rstrip(b"\r")
            what = "folding is not supported" if line[:1] in (b" ", b"\t") else "want 'Name: value'"
            raise BadRequest(f"malformed header line in part {index}: {line[:80]!r} ({what})")
        key = name.decode("ascii").lower()
        if key not in headers:  # the first occurrence wins
            headers[key] = value.strip(b" \t\r").decode("utf-8", "replace")
    return headers


def collect_parts(
    body: bytes, content_type: str, limits: MultipartLimits = DEFAULT_LIMITS
) -> list[Part]:
    """Parse a small, complete body into whole parts (tests, error responses, tools)."""
    _, boundary = parse_content_type(content_type)
    parser = MultipartParser(boundary, limits)
    events = parser.feed(body)
    events += parser.close()
    parts: list[Part] = []
    current: PartStarted | None = None
    chunks: list[bytes] = []
    for ev in events:
        if isinstance(ev, PartStarted):
            current, chunks = ev, []
        elif isinstance(ev, PartData):
            chunks.append(ev.data)
        elif isinstance(ev, PartEnded) and current is not None:
            parts.append(Part(current.headers, b"".join(chunks), current.index))
    return parts
