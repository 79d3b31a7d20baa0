"""The bare stack's ceiling: granian + a minimal ASGI app, no OpenCIC logic.

Every ``POST`` body is parsed with :class:`opencic.protocol.multipart.MultipartParser`
(the same incremental parser the server uses) and answered with a fixed multipart body:
the bytes of a real OpenCIC reply captured by ``run.py``, so both servers send the same
amount. No token check, no routing, no event validation, no assistant, no TTS cache.

Configured through environment variables set by ``run.py``:
``BENCH_BARE_REPLY`` (file with the reply body) and ``BENCH_BARE_CONTENT_TYPE``.
Started with ``serve.py bare``, i.e. through OpenCIC's own granian runner settings.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from opencic.protocol.errors import BadRequest
from opencic.protocol.multipart import MultipartParser, PartEnded, parse_content_type

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BareApp:
    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ]

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope.get("path") == "/ping":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        content_type = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"), None
        )
        parts = 0
        status = 200
        try:
            parser = MultipartParser(parse_content_type(content_type)[1])
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return
                more = bool(message.get("more_body"))
                events = parser.feed(message.get("body", b""))
                if not more:
                    events += parser.close()
                parts += sum(1 for ev in events if isinstance(ev, PartEnded))
        except BadRequest:
            status = 400
        if parts == 0:
            status = 400
        if status != 200:
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


def create_app() -> BareApp:
    return BareApp(
        Path(os.environ["BENCH_BARE_REPLY"]).read_bytes(), os.environ["BENCH_BARE_CONTENT_TYPE"]
    )
