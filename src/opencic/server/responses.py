"""Writing CIC responses to ASGI ``send``: multipart directives, 204, errors."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..protocol.messages import Attachment, Directive, system_exception
from ..protocol.multipart_writer import MultipartWriter
from ..protocol.schema import validate_directive_strict
from .downchannels import encode_parts, frame

Send = Callable[[dict[str, Any]], Awaitable[None]]


def order_parts(
    directives: Sequence[Directive], attachments: Sequence[Attachment]
) -> tuple[list[Directive], list[Attachment]]:
    """Each attachment right after the first directive that references it (seed example order)."""
    by_cid = {a.content_id: a for a in attachments}
    ordered: list[Directive | Attachment] = []
    for d in directives:
        ordered.append(d)
        url = d.payload.get("url")
        if isinstance(url, str) and url.startswith("cid:") and url[4:] in by_cid:
            ordered.append(by_cid.pop(url[4:]))
    ordered.extend(by_cid.values())
    return (
        [x for x in ordered if isinstance(x, Directive)],
        [x for x in ordered if isinstance(x, Attachment)],
    )


def encode_reply(writer: MultipartWriter, directives: Sequence[Directive], attachments: Sequence[Attachment]) -> bytes:
    by_cid = {a.content_id: a for a in attachments}
    chunks: list[bytes] = []
    for d in directives:
        # Strict outbound (B-ST-01 and the catalogue): an invalid directive is our bug
        # and must not reach a device; OutboundSchemaError becomes a 500 upstream.
        validate_directive_strict(d)
        chunks.append(frame(writer, encode_parts([d])))
        url = d.payload.get("url")
        if isinstance(url, str) and url.startswith("cid:") and url[4:] in by_cid:
            chunks.append(frame(writer, encode_parts([], [by_cid.pop(url[4:])])))
    for a in by_cid.values():
        chunks.append(frame(writer, encode_parts([], [a])))
    chunks.append(writer.close())
    return b"".join(chunks)


async def start_multipart_stream(send: Send, content_type: str, status: int = 200) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type.encode())],
    })


async def send_multipart(
    send: Send, status: int, directives: Sequence[Directive], attachments: Sequence[Attachment] = ()
) -> None:
    writer = MultipartWriter()
    body = encode_reply(writer, directives, attachments)
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", writer.content_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    })
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_empty(send: Send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def send_json(send: Send, status: int, document: Any) -> None:
    body = json.dumps(document).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_error(send: Send, status: int, description: str) -> None:
    """B-ST-01 / ambiguity #9: every non-2xx carries a System.Exception multipart body."""
    await send_multipart(send, status, [system_exception(status, description)])
