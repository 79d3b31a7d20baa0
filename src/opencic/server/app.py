"""The CIC endpoint as a plain ASGI application (runs on granian or Hypercorn).

Routes (B-CN-07): ``GET /v1/directives`` (downchannel), ``POST /v1/events``,
``GET /ping``. Every non-2xx answer is a multipart body holding one
``System.Exception`` whose code equals the HTTP status (B-ST-01, ambiguity #9); that
conversion happens in exactly one place, :meth:`CICApp._http`.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..assistant.core import DeviceContext
from ..assistant.voice import VoiceTurn
from ..logs import AccessLog
from ..protocol.errors import (
    BadRequest,
    CICError,
    InternalError,
    NotFound,
    OutboundSchemaError,
    PreconditionFailed,
    TooManyRequests,
    Unauthorized,
)
from ..protocol.event_stream import AudioChunk, AudioEnded, EventReceived, EventRequestParser
from ..protocol.ids import new_id
from ..protocol.messages import Directive, Event
from ..protocol.multipart import MultipartLimits
from ..protocol.schema import validate_directive_strict
from ..protocol.user_agent import parse_user_agent
from ..state.base import TokenGrant
from ..state.hashing import token_hash
from . import admin, limits
from .auth_api import AuthApi
from .downchannels import Downchannel, encode_parts, frame
from .responses import send_empty, send_error, send_json, send_multipart, start_multipart_stream
from .services import Services

log = logging.getLogger("opencic.server")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# How much of a request body we read and discard before answering early (Hypercorn
# kills the whole connection when DATA arrives for a stream it already answered).
DRAIN_LIMIT_BYTES = 8 * 1024 * 1024
# How long a stop waits for downchannels to send their closing delimiter.
STOP_GRACE_SECONDS = 2.0
DRAIN_TIMEOUT_SECONDS = 5.0


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def connection_key(scope: Scope) -> tuple[str, int | str]:
    """One HTTP/2 connection = one (peer address, peer port) on granian and Hypercorn."""
    client = scope.get("client") or ("?", 0)
    return (str(client[0]), client[1])


class CICApp:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.limits = MultipartLimits()
        # Hypercorn kills the whole connection (downchannel included) when DATA arrives
        # for a stream it already answered, so there we read the rest of the body before
        # an early answer. granian resets just that stream, so it can answer at once,
        # while the device is still streaming (full duplex).
        self.drain_before_early_answer = services.settings.server == "hypercorn"
        self._stopping: asyncio.Future[None] | None = None
        self.access_log = AccessLog(enabled=log.isEnabledFor(logging.INFO))
        self.auth_api = AuthApi(services)  # /authorize, /token (auth.md)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # ------------------------------------------------------------------ lifespan

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.services.start()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                # Long-lived start-up objects leave the GC's generations: pushes to
                # thousands of downchannels no longer pay for scanning them.
                gc.collect()
                gc.freeze()
                self._end_downchannels_on_stop()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.access_log.flush()
                self.services.registry.close_all()
                await self.services.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _end_downchannels_on_stop(self) -> None:
        """On SIGTERM/SIGINT, end every downchannel cleanly before the server drains.

        A graceful stop waits for requests in flight, and a downchannel never finishes
        by itself, so without this a stop hangs until the kill timeout and devices see
        a reset instead of a closed stream (after which they reconnect, B-DC-07). The
        server's own handler is chained: asyncio keeps one handler per signal.
        """
        loop = asyncio.get_running_loop()
        handlers = getattr(loop, "_signal_handlers", None)
        if not isinstance(handlers, dict):
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = handlers.get(signum)
            if previous is None:
                continue

            def on_stop(previous: asyncio.Handle = previous) -> None:
                self.services.registry.close_all()
                # Let the streams write their closing delimiter before the server's
                # GOAWAY: many HTTP/2 clients (h2 among them) drop every frame after it.
                self._stopping = asyncio.ensure_future(self._then_stop(previous))

            loop.add_signal_handler(signum, on_stop)

    async def _then_stop(self, previous: asyncio.Handle) -> None:
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while len(self.services.registry) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        previous._run()

    # ------------------------------------------------------------------ dispatch

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path, method = scope.get("path", ""), scope.get("method", "GET")
        state: dict[str, Any] = {"status": None, "device": None, "dialog": None}
        try:
            if path == "/ping":
                # B-KA-03: 204; Authorization is sent by clients (B-CN-03) but a ping
                # must work even while a token is being refreshed.
                state["status"] = 204
                await send_empty(send, 204)
            elif path == "/v1/directives":
                self._require_http2(scope)
                if method != "GET":
                    raise BadRequest(f"{method} is not allowed on /v1/directives; use GET")
                await self._downchannel(scope, receive, send, state)
            elif path == "/v1/events":
                self._require_http2(scope)
                if method != "POST":
                    raise BadRequest(f"{method} is not allowed on /v1/events; use POST")
                await self._events(scope, receive, send, state)
            elif path == "/admin/v1/push":
                await self._admin_push(scope, receive, send, state)
            elif self.auth_api.handles(path):
                await self.auth_api.handle(scope, receive, send, state)
            else:
                raise NotFound(f"no such endpoint: {path}")
        except CICError as exc:
            await self._fail(scope, receive, send, exc, state, drain=not state.get("drained"))
        except OutboundSchemaError as exc:
            trace = new_id()
            log.error("outbound directive failed its schema", extra={"trace": trace, "error": str(exc)})
            await self._fail(scope, receive, send, InternalError(f"internal error (trace {trace})"), state)
        except Exception:
            trace = new_id()
            log.exception(
                "internal error", extra={"trace": trace, "path": path, "device": state["device"]}
            )
            await self._fail(scope, receive, send, InternalError(f"internal error (trace {trace})"), state)
        finally:
            self.access_log.write({
                "method": method,
                "path": path,
                "status": state["status"],
                "device": state["device"],
                "dialogRequestId": state["dialog"],
                "ms": round((time.perf_counter() - started) * 1000, 2),
            })

    async def _fail(
        self, scope: Scope, receive: Receive, send: Send, exc: CICError, state: dict[str, Any],
        drain: bool = True,
    ) -> None:
        if state.get("response_started"):
            # Too late for a status: the stream is simply ended; the log has the cause.
            return
        if drain and self.drain_before_early_answer and scope.get("method") not in ("GET", "HEAD"):
            await _drain(receive)
        state["status"] = exc.status
        await send_error(send, exc.status, exc.description)

    @staticmethod
    def _require_http2(scope: Scope) -> None:
        if not str(scope.get("http_version", "2")).startswith("2"):
            raise BadRequest("CIC requires HTTP/2 (B-CN-01)")

    async def _authenticate(self, scope: Scope) -> tuple[TokenGrant, str]:
        """B-CN-04: missing, unknown or expired bearer token -> 401.

        Returns the token's grant and the token itself."""
        value = _header(scope, b"authorization")
        if value is None:
            raise Unauthorized("missing Authorization header (expected 'Bearer <token>')")
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        assert self.services.token_cache is not None
        grant = await self.services.token_cache.lookup(token.strip())
        if grant is None:
            raise Unauthorized("access token is unknown, revoked or expired")
        return grant, token.strip()

    def _note_user_agent(self, scope: Scope, device_id: str) -> None:
        # B-UA-05: a non-conforming User-Agent is logged, not refused.
        value = _header(scope, b"user-agent")
        if parse_user_agent(value) is None:
            log.info("non-conforming User-Agent", extra={"device": device_id, "user_agent": value})

    # ------------------------------------------------------------------ downchannel

    async def _downchannel(self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any]) -> None:
        grant, token = await self._authenticate(scope)
        device_id = grant.device_id
        state["device"] = device_id
        if (limits.declared_length(scope) or 0) > limits.MAX_DOWNCHANNEL_BODY:
            raise BadRequest("GET /v1/directives carries no body (B-DC-01)")
        if not self.services.rate_limiter.allow(device_id):
            raise TooManyRequests(
                "too many downchannel requests; keep one downchannel open per device (B-DC-05)"
            )
        self._note_user_agent(scope, device_id)
        registry = self.services.registry
        channel = registry.open(device_id, connection_key(scope), token_hash(token))
        state["status"] = 200
        state["response_started"] = True
        try:
            await start_multipart_stream(send, channel.writer.content_type)
            hello = Directive.create("Clova", "Hello")  # B-DC-02: Hello first, no dialogRequestId
            await send({"type": "http.response.body", "body": frame(channel.writer, encode_parts([hello])), "more_body": True})
            # Directives stored while the device was offline follow Hello.
            assert self.services.delivery is not None
            await self.services.delivery.flush(device_id)
            await self._pump_downchannel(channel, receive, send)
        finally:
            registry.release(channel)

    async def _pump_downchannel(self, channel: Downchannel, receive: Receive, send: Send) -> None:
        # One plain queue wait per push: at 10 k downchannels anything heavier per
        # stream (a wait() over two futures, say) shows in the fan-out time.
        watcher = asyncio.ensure_future(_watch_disconnect(channel, receive))
        try:
            while True:
                data = await channel.queue.get()
                if data is None:
                    return  # the device went away
                if not data:  # replaced by a newer downchannel (B-DC-04): end cleanly
                    await send({"type": "http.response.body", "body": channel.writer.close(), "more_body": False})
                    return
                # Coalesce whatever else is already queued into one DATA write.
                chunks = [data]
                while not channel.queue.empty():
                    more = channel.queue.get_nowait()
                    if not more:
                        channel.queue.put_nowait(more)
                        break
                    chunks.append(more)
                try:
                    await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
                except OSError:
                    return  # the stream closed under us: same as a disconnect
        finally:
            watcher.cancel()

    # ------------------------------------------------------------------ admin

    async def _admin_push(self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any]) -> None:
        try:
            if scope.get("method") != "POST":
                raise BadRequest("use POST")
            admin.check_admin(_header(scope, b"authorization"), self.services.admin_token)
            limits.check_declared(scope, admin.MAX_ADMIN_BODY)
            body = await _read_body(receive, admin.MAX_ADMIN_BODY)
            state["drained"] = True
            request = admin.parse_push_request(body)
            targets = request.devices
            if request.users:
                targets = [*(targets or []), *await self._devices_of(request.users)]
                targets = list(dict.fromkeys(targets))
            assert self.services.delivery is not None
            result = (await self.services.delivery.push(
                targets, request.directives, queue_seconds=request.queue_seconds)).to_json()
        except CICError as exc:
            if not state.get("drained") and self.drain_before_early_answer:
                await _drain(receive)
            state["status"] = exc.status
            await send_json(send, exc.status, {"error": {"code": exc.status, "description": exc.description}})
            return
        state["status"] = 200
        await send_json(send, 200, result)

    async def _devices_of(self, user_names: list[str]) -> list[str]:
        store = self.services.store
        devices: list[str] = []
        for name in user_names:
            user = await store.users.get_by_name(name)
            if user is None:
                raise BadRequest(f"no such user: {name!r}")
            devices += [d.device_id for d in await store.devices.list(user.user_id)]
        return devices

    # ------------------------------------------------------------------ events

    async def _events(self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any]) -> None:
        grant, _ = await self._authenticate(scope)
        device_id = grant.device_id
        state["device"] = device_id
        strict = self.settings.connection_check == "strict"
        if not self.services.registry.accepts_event(device_id, connection_key(scope), strict=strict):
            raise PreconditionFailed(
                "no open downchannel on this connection: open GET /v1/directives first and "
                "send events on the same HTTP/2 connection (B-EV-02)"
            )
        max_body = self.settings.max_event_bytes
        limits.check_declared(scope, max_body, "the event request body")
        parser = EventRequestParser(
            _header(scope, b"content-type"), self.limits, max_json_bytes=self.settings.max_json_bytes
        )
        received = 0
        event: Event | None = None
        device = DeviceContext(device_id, _header(scope, b"user-agent"), user_id=grant.user_id,
                               guest=grant.guest)
        # A voice request is answered as its audio streams (B-SR-01, B-AU-03).
        voice: VoiceTurn | None = None
        try:
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    state["drained"] = True
                    raise BadRequest("request ended before the multipart body was complete")
                more = bool(message.get("more_body"))
                # Before parsing: a parse error must not make _fail wait for body that
                # will never come.
                state["drained"] = not more
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > max_body:
                    raise limits.too_large(max_body, "the event request body")
                items = parser.feed(chunk)
                if not more:
                    items += parser.close()
                for item in items:
                    if isinstance(item, EventReceived):
                        event = item.event
                        state["dialog"] = event.header.dialog_request_id
                        await self.services.assistant.observe(event, device)
                        if event.qualified_name == "SpeechRecognizer.Recognize":
                            voice = self.services.assistant.start_voice(event, device)
                            # KeepRecording, ShowRecognizedText (B-SR-03/04).
                            voice.interim = functools.partial(self._push_voice, device_id)
                    elif isinstance(item, AudioChunk):
                        if voice is not None and voice.feed(item.data, item.part):
                            self._push_voice(device_id, voice.stop_capture())
                    elif isinstance(item, AudioEnded) and voice is not None:
                        voice.end_of_audio()
            if event is None:
                raise BadRequest("the multipart body holds no event message")
            if event.violations:
                log.info(
                    "inbound event departs from its schema",
                    extra={
                        "device": device_id,
                        "event": event.qualified_name,
                        "violations": [str(v) for v in event.violations[:20]],
                    },
                )
            if voice is not None:
                reply = await voice.reply()
                voice.answer_sent()
            else:
                reply = await self.services.assistant.handle(event, device)
        except BaseException:
            if voice is not None:
                voice.cancel()
            raise
        if not reply.directives:
            state["status"] = 204
            await send_empty(send, 204)  # B-EV-03
            return
        state["status"] = 200
        await send_multipart(send, 200, reply.directives, reply.attachments)

    def _push_voice(self, device_id: str, directive: Directive) -> None:
        """B-SR-01/03/04: StopCapture, ShowRecognizedText and KeepRecording go on the
        device's downchannel, at once, while the upload may still be running; audio
        after StopCapture is not processed (B-AU-05)."""
        validate_directive_strict(directive)
        if not self.services.registry.push(device_id, [directive]):
            log.info("no downchannel for a voice directive", extra={
                "device": device_id, "dialogRequestId": directive.dialog_request_id,
                "directive": directive.qualified_name,
            })


async def _watch_disconnect(channel: Downchannel, receive: Receive) -> None:
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            channel.gone()
            return
        received += len(message.get("body", b""))
        if received > limits.MAX_DOWNCHANNEL_BODY:
            # A body on GET /v1/directives (one the check of Content-Length could not
            # see): end the stream cleanly instead of reading it for ever.
            channel.close()
            return


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise BadRequest("request ended before its body was complete")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise limits.too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _drain(receive: Receive) -> None:
    """Read and drop what is left of a request body, bounded in bytes and time."""
    total = 0

    async def run() -> None:
        nonlocal total
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            total += len(message.get("body", b""))
            if not message.get("more_body") or total > DRAIN_LIMIT_BYTES:
                return

    try:
        await asyncio.wait_for(run(), DRAIN_TIMEOUT_SECONDS)
    except TimeoutError:
        pass
