"""Writing CIC multipart bodies (B-MP-01..07).

:class:`MultipartWriter` frames parts so that each one can be handed over at once: the
delimiter is written right after every part, not lazily before the next (design.md,
"Pitfalls"). A downchannel holding only Hello is therefore
``--b\\r\\n<headers>\\r\\n\\r\\n<json>\\r\\n--b`` and can stay open for days.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from .ids import new_id
from .messages import Attachment, Directive, dumps
from .multipart import JSON_CONTENT_TYPE, OCTET_STREAM, _check_boundary


def _header_safe(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what} must not contain CR or LF: {value!r}")
    return value


class MultipartWriter:
    """Frames parts so that each is complete on the wire as soon as it is written.

    The first part starts with ``--b\\r\\n``, every part ends with the delimiter
    ``\\r\\n--b``, the next part starts with ``\\r\\n`` (finishing that delimiter line)
    and :meth:`close` writes ``--\\r\\n``. Headers per B-MP-04/B-MP-07.
    """

    def __init__(self, boundary: str | None = None, subtype: str = "related") -> None:
        # 48 random hex digits: never found in a part by chance (B-MP-02).
        self.boundary = boundary if boundary is not None else secrets.token_hex(24)
        _check_boundary(self.boundary)
        if not re.fullmatch(r"[a-z0-9.+-]+", subtype):
            raise ValueError(f"invalid multipart subtype {subtype!r}")
        self.content_type = f"multipart/{subtype}; boundary={self.boundary}"
        self._dash = b"--" + self.boundary.encode("ascii")
        self._lf_dash = b"\n" + self._dash
        self._delimiter = b"\r\n" + self._dash
        self._parts = 0
        self._closed = False

    @property
    def parts_written(self) -> int:
        return self._parts

    def part(
        self,
        body: bytes,
        *,
        content_type: str,
        name: str | None = None,
        content_id: str | None = None,
    ) -> bytes:
        if self._closed:
            raise ValueError("the multipart body is already closed")
        if self._lf_dash in body:
            raise ValueError("a part body contains the multipart boundary")
        if name is None:
            name = f"part-{new_id()}"  # B-MP-04: every part is named
        elif '"' in name:
            raise ValueError(f"part name must not contain '\"': {name!r}")
        lines = [
            self._dash + b"\r\n" if self._parts == 0 else b"\r\n",
            f'Content-Disposition: form-data; name="{_header_safe(name, "name")}"\r\n'.encode(),
        ]
        if content_id is not None:
            cid = _header_safe(content_id.strip(), "content_id")
            if not (cid.startswith("<") and cid.endswith(">")):
                cid = f"<{cid}>"  # design.md: AVS-style clients expect the bracketed form
            lines.append(f"Content-ID: {cid}\r\n".encode())
        lines.append(f"Content-Type: {_header_safe(content_type, 'content_type')}\r\n\r\n".encode())
        lines.append(body)
        lines.append(self._delimiter)  # written now, so the part can be handed over now
        self._parts += 1
        return b"".join(lines)

    def json_part(self, obj: Any, *, name: str) -> bytes:
        return self.part(dumps(obj), content_type=JSON_CONTENT_TYPE, name=name)

    def directive_part(self, directive: Directive) -> bytes:
        """One directive per JSON part (B-MP-06), named as in the seed examples."""
        header = directive.header
        if header.namespace == "System" and header.name == "Exception":
            kind = "exception"
        else:
            kind = f"{header.name[:1].lower()}{header.name[1:]}Directive"
        return self.json_part(directive.to_json(), name=f"{kind}-{header.message_id}")

    def attachment_part(self, attachment: Attachment) -> bytes:
        """Binary part with ``Content-ID: <id>``, referenced as ``cid:id`` (B-MP-07)."""
        return self.part(
            attachment.data,
            content_type=attachment.content_type or OCTET_STREAM,
            name=f"attachment-{new_id()}",
            content_id=attachment.content_id,
        )

    def event_part(self, obj: Any) -> bytes:
        """Client side: the event JSON as the first part, named ``metadata`` (B-MP-05)."""
        return self.json_part(obj, name="metadata")

    def audio_part(self, data: bytes) -> bytes:
        """Client side: one audio part (200 ms of L16 audio, B-AU-02), named ``audio``."""
        return self.part(data, content_type=OCTET_STREAM, name="audio")

    def close(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        if self._parts == 0:
            return self._dash + b"--\r\n"
        return b"--\r\n"
