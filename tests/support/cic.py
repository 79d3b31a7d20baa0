"""Helpers for end-to-end tests: build event bodies byte by byte, read CIC responses."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from opencic.protocol.multipart import (
    MultipartParser,
    PartData,
    PartEnded,
    PartStarted,
    parse_content_type,
)

BOUNDARY = "test-boundary-1234567890"
UA = "OpenCIC/E2ETest/0.1.0 (Linux;Test)"


def auth_headers(token: str | None, content_type: str | None = None) -> dict[str, str]:
    headers = {"user-agent": UA}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if content_type is not None:
        headers["content-type"] = content_type
    return headers


def event_json(namespace: str, name: str, payload: dict[str, Any] | None = None,
               dialog_request_id: str | None = None, context: list[Any] | None = None) -> dict[str, Any]:
    header: dict[str, Any] = {"namespace": namespace, "name": name, "messageId": str(uuid.uuid4())}
    if dialog_request_id:
        header["dialogRequestId"] = dialog_request_id
    return {"context": context or [], "event": {"header": header, "payload": payload or {}}}


def part(body: bytes, content_type: str | None = "application/json; charset=UTF-8",
         name: str = "metadata", boundary: str = BOUNDARY) -> bytes:
    lines = [f"--{boundary}", f'Content-Disposition: form-data; name="{name}"']
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body + b"\r\n"


def close(boundary: str = BOUNDARY) -> bytes:
    return f"--{boundary}--\r\n".encode()


def event_body(doc: Any, *audio: bytes, boundary: str = BOUNDARY) -> bytes:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    out = part(raw, boundary=boundary)
    for chunk in audio:
        out += part(chunk, "application/octet-stream", "audio", boundary)
    return out + close(boundary)


CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


@dataclass
class ReadPart:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def directive(self) -> dict[str, Any]:
        return self.json["directive"]  # type: ignore[no-any-return]

    @property
    def qualified_name(self) -> str:
        h = self.directive["header"]
        return f"{h['namespace']}.{h['name']}"


def read_parts(content_type: str, body: bytes, ended: bool = True) -> tuple[list[ReadPart], bool]:
    """Parts complete so far and whether the body was closed; ``ended=False`` reads a
    stream that is still open (a downchannel)."""
    _, boundary = parse_content_type(content_type)
    parser = MultipartParser(boundary)
    parts: list[ReadPart] = []
    current: ReadPart | None = None
    closed = False
    events = parser.feed(body)
    if ended:
        events += parser.close()
    for ev in events:
        if isinstance(ev, PartStarted):
            current = ReadPart(dict(ev.headers), b"")
        elif isinstance(ev, PartData) and current is not None:
            current.body += ev.data
        elif isinstance(ev, PartEnded) and current is not None:
            parts.append(current)
            current = None
        elif type(ev).__name__ == "BodyEnded":
            closed = True
    return parts, closed


def exception_of(resp: Any) -> dict[str, Any]:
    """The System.Exception payload of an error response (B-ST-01), checked on the way."""
    parts, closed = read_parts(resp.headers["content-type"], resp.body)
    assert closed, "error body must be a complete multipart"
    assert len(parts) == 1
    d = parts[0].directive
    assert d["header"]["namespace"] == "System" and d["header"]["name"] == "Exception"
    assert "dialogRequestId" not in d["header"]
    assert d["payload"]["code"] == resp.status
    assert isinstance(d["payload"]["description"], str) and d["payload"]["description"]
    return d["payload"]  # type: ignore[no-any-return]


async def open_downchannel(client: Any, token: str) -> int:
    """GET /v1/directives on ``client`` (a RawH2) and wait for Hello; returns the stream id."""
    sid: int = await client.start("GET", "/v1/directives", auth_headers(token), end=True)

    def ready(s: Any) -> bool:
        if s.status != 200:
            return bool(s.ended)
        return bool(read_parts(s.headers["content-type"], bytes(s.body), bool(s.ended))[0])

    st = await client.wait(sid, ready)
    assert st.status == 200, bytes(st.body)
    return sid


async def with_device(server: Any, fn: Any, *, prefix: str = "dev") -> Any:
    """A fresh device on its own connection with its downchannel open: ``fn(client,
    token, downchannel stream id)``, then the connection is closed."""
    token = server.create_token(f"{prefix}-{uuid.uuid4().hex[:10]}")
    client = await server.connect()
    try:
        sid = await open_downchannel(client, token)
        return await fn(client, token, sid)
    finally:
        await client.close()
