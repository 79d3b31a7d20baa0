"""A scripted in-process CIC server for SDK tests (h2c, built on the ``h2`` library).

The real server cannot be told to answer 412 once, to swallow PINGs or to push a
StopCapture in the middle of an upload; this fake can. Responses are framed with the
project's own :class:`MultipartWriter`, request bodies parsed with ``collect_parts``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Self

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from opencic.protocol.messages import Attachment, Directive, system_exception
from opencic.protocol.multipart import Part, collect_parts
from opencic.protocol.multipart_writer import MultipartWriter

Message = Directive | Attachment


@dataclass
class Request:
    conn: ServerConn
    stream_id: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def parts(self) -> list[Part]:
        return collect_parts(bytes(self.body), self.headers["content-type"])


EventHandler = Callable[[Request], Awaitable[tuple[int, list[Message]]]]


async def hello_time(req: Request) -> tuple[int, list[Message]]:
    """Default event answer: a Speak with its attachment *before* it, then RenderText."""
    import json

    event = json.loads(req.parts()[0].body)["event"]
    dialog = event["header"].get("dialogRequestId")
    mp3 = Attachment("TTS-1", b"\xff\xfb\x90\x00fake-mp3")
    speak = Directive.create("SpeechSynthesizer", "Speak",
                             {"token": "t1", "format": "AUDIO_MPEG", "url": "cid:tts-1"},
                             dialog_request_id=dialog)
    render = Directive.create("Clova", "RenderText", {"text": "It is noon."},
                              dialog_request_id=dialog)
    unknown = Directive.create("Acme", "Frobnicate", {}, dialog_request_id=dialog)
    return 200, [mp3, speak, unknown, render]


class ServerConn:
    def __init__(self, fake: FakeCIC, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.fake = fake
        self.reader = reader
        self.writer = writer
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.requests: dict[int, Request] = {}
        self.downchannel: int | None = None
        self.dc_writer: MultipartWriter | None = None

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def send(self, sid: int, data: bytes, end: bool = False) -> None:
        size = self.h2.max_outbound_frame_size
        chunks = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
        for i, chunk in enumerate(chunks):
            self.h2.send_data(sid, chunk, end_stream=end and i == len(chunks) - 1)
        self.flush()

    def respond(self, sid: int, status: int, messages: list[Message]) -> None:
        if not messages:
            self.h2.send_headers(sid, [(":status", str(status))], end_stream=True)
            self.flush()
            return
        w = MultipartWriter()
        self.h2.send_headers(sid, [(":status", str(status)), ("content-type", w.content_type)])
        self.send(sid, b"".join(frame(w, m) for m in messages) + w.close(), end=True)

    def push(self, *messages: Message) -> None:
        assert self.downchannel is not None and self.dc_writer is not None
        self.send(self.downchannel, b"".join(frame(self.dc_writer, m) for m in messages))

    def end_downchannel(self) -> None:
        assert self.downchannel is not None and self.dc_writer is not None
        sid, self.downchannel = self.downchannel, None
        self.send(sid, self.dc_writer.close(), end=True)

    async def serve(self) -> None:
        self.h2.initiate_connection()
        self.flush()
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    return
                if not self.fake.answer_pings:
                    continue  # a dead peer: swallow everything, PINGs included
                try:
                    events = self.h2.receive_data(data)
                except h2.exceptions.ProtocolError:
                    return
                for ev in events:
                    self.on_event(ev)
                self.flush()
        except (ConnectionError, OSError):
            return

    def on_event(self, ev: h2.events.Event) -> None:
        if isinstance(ev, h2.events.RequestReceived):
            headers = dict(ev.headers)  # type: ignore[arg-type]
            req = Request(self, ev.stream_id, headers[":method"], headers[":path"], headers)
            self.requests[ev.stream_id] = req
            self.fake.requests.append(req)
            if ev.stream_ended:
                req.ended.set()
            asyncio.get_running_loop().create_task(self.fake.route(req))
        elif isinstance(ev, h2.events.DataReceived):
            req = self.requests[ev.stream_id]
            req.body += ev.data
            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if self.fake.on_data is not None:
                self.fake.on_data(req)
        elif isinstance(ev, h2.events.StreamEnded):
            self.requests[ev.stream_id].ended.set()
        elif isinstance(ev, h2.events.StreamReset):
            req = self.requests.get(ev.stream_id)
            if req is not None:
                req.ended.set()
            if ev.stream_id == self.downchannel:
                self.downchannel = None  # the client gave up on it


def frame(w: MultipartWriter, m: Message) -> bytes:
    return w.attachment_part(m) if isinstance(m, Attachment) else w.directive_part(m)


class FakeCIC:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.conns: list[ServerConn] = []
        self.on_event: EventHandler = hello_time
        self.on_data: Callable[[Request], None] | None = None
        self.downchannel_status = 200
        self.answer_pings = True
        self.downchannel_opened = asyncio.Event()

    async def __aenter__(self) -> Self:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for conn in self.conns:
            conn.writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ServerConn(self, reader, writer)
        self.conns.append(conn)
        try:
            await conn.serve()
        except asyncio.CancelledError:
            pass  # loop shutdown: end quietly instead of logging a callback error

    @property
    def current(self) -> ServerConn:
        """The connection holding the live downchannel."""
        for conn in reversed(self.conns):
            if conn.downchannel is not None:
                return conn
        raise AssertionError("no downchannel open")

    def paths(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    async def route(self, req: Request) -> None:
        conn = req.conn
        if req.path == "/v1/directives":
            if self.downchannel_status != 200:
                exc = system_exception(self.downchannel_status, "refused by the fake")
                conn.respond(req.stream_id, self.downchannel_status, [exc])
                return
            for other in self.conns:  # B-DC-04: a new downchannel replaces the old one
                if other.downchannel is not None:
                    other.end_downchannel()
            w = MultipartWriter()
            conn.h2.send_headers(req.stream_id, [(":status", "200"), ("content-type", w.content_type)])
            conn.downchannel, conn.dc_writer = req.stream_id, w
            conn.send(req.stream_id, frame(w, Directive.create("Clova", "Hello", {})))
            self.downchannel_opened.set()
        elif req.path == "/ping":
            conn.respond(req.stream_id, 204, [])
        elif req.path == "/v1/events":
            await req.ended.wait()
            status, messages = await self.on_event(req)
            conn.respond(req.stream_id, status, messages)
        else:
            conn.respond(req.stream_id, 404, [system_exception(404, "no such path")])
