"""``CICClient``: the small public face of the SDK.

Usage::

    async with CICClient("https://cic.example:8443", token) as client:
        client.on("SpeechSynthesizer.Speak", play_tts)
        response = await client.recognize_text("what time is it")
        await client.wait_idle()

Layers (httpx/httpcore style): :mod:`.connection` moves HTTP/2 frames, the sans-I/O
:mod:`.queues` decides which directive runs when, :mod:`.dispatch` runs handlers from
it (B-MQ), :mod:`.exchange` performs one event request (B-EV) and :mod:`.downchannel`
reads one downchannel stream (B-DC). This module wires
them together: downchannel upkeep and reconnects (B-DC-07), keep-alive (B-KA-01/02),
dialogue IDs of outgoing requests (B-DI) and the 412 retry (B-EV-10).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from opencic.protocol.ids import new_id
from opencic.protocol.messages import ContextObject, Event

from .audio import wav_source
from .auth import AuthAPIError, TokenRefresher
from .backoff import Backoff
from .connection import HTTP2Connection, ResponseHead, make_ssl_context
from .dispatch import Dispatcher, Handler
from .downchannel import Downchannel, open_downchannel, pump
from .errors import (
    AuthenticationFailed,
    ClientError,
    ConnectionClosed,
    NotConnected,
    RequestFailed,
    TransportError,
)
from .exchange import ReplayableAudio, exchange
from .models import EventResponse, default_context
from .useragent import DEFAULT_USER_AGENT

# Waits after a 429 on the downchannel: 7 s in all, past the server's 5 s window.
TOO_MANY_DOWNCHANNELS_DELAYS = (1.0, 2.0, 4.0)

log = logging.getLogger("opencic.client")

ContextProvider = Callable[[], Sequence[ContextObject]]
TokenSource = str | Callable[[], str]

# A downchannel that lived this long counts as healthy: the next outage starts the
# backoff schedule from its first step again.
_STABLE_SECONDS = 10.0
_DEFAULT = object()


class CICClient:
    """An async CIC device client (one HTTP/2 connection, one downchannel).

    ``server``: ``https://host:port`` (TLS, ALPN h2) or ``http://host:port`` (h2c).
    ``token``: the bearer token, or a callable returning the current one, or a
    :class:`~opencic.client.auth.TokenManager` (refreshed before expiry and on 401).
    ``cafile``/``insecure``/``ssl_context``: TLS trust (self-signed dev certs).
    ``context_provider``: returns the context objects for each event (B-EV-07).
    ``ping_interval``/``ping_timeout``: keep-alive (B-KA-01); ``keepalive="get"`` uses
    ``GET /ping`` instead of HTTP/2 PING (B-KA-02).
    ``auto_reconnect``: reopen the downchannel/connection with backoff (B-DC-07).

    ``Clova.Hello`` is dispatched for every downchannel opened, so a handler for it
    is the place to resynchronise after a reconnect (B-KA-04). A client object is
    single-use: after :meth:`aclose` create a new one.
    """

    def __init__(
        self,
        server: str,
        token: TokenSource,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        cafile: str | None = None,
        insecure: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        context_provider: ContextProvider = default_context,
        ping_interval: float = 60.0,
        ping_timeout: float = 10.0,
        keepalive: Literal["ping", "get"] = "ping",
        auto_reconnect: bool = True,
        backoff: Backoff | None = None,
        connect_timeout: float = 10.0,
        request_timeout: float = 60.0,
    ) -> None:
        url = urlsplit(server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"server must be http(s)://host[:port], got {server!r}")
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        # The CIC base URI may carry a path prefix (B-CN-07: it is deployment config).
        self._base_path = url.path.rstrip("/")
        self._ssl = None
        if url.scheme == "https":
            self._ssl = ssl_context or make_ssl_context(cafile=cafile, insecure=insecure)
        self._server_hostname = server_hostname
        self._token = token
        self._auth = token if isinstance(token, TokenRefresher) else None
        self.user_agent = user_agent
        self._context_provider = context_provider
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.keepalive = keepalive
        self.auto_reconnect = auto_reconnect
        self._backoff = backoff or Backoff()
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout

        self._dispatcher = Dispatcher()
        self._conn: HTTP2Connection | None = None
        self._downchannel: Downchannel | None = None
        self._establish_lock = asyncio.Lock()
        self._ready = asyncio.Event()  # set: downchannel up, or the client stopped
        self._supervisor: asyncio.Task[None] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._token_task: asyncio.Task[None] | None = None
        self._started = False
        self._closing = False
        self._fatal: ClientError | None = None
        self._sources = 0
        self.downchannels_opened = 0

    # ------------------------------------------------------------------ public API

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def on(self, name: str, handler: Handler | None = None) -> Any:
        """Register ``handler`` for directives named ``Namespace.Name`` (``"*"``: any
        directive without its own handler). Usable as a decorator. Handlers get a
        :class:`QueuedDirective` and may be sync or async."""

        def register(func: Handler) -> Handler:
            self._dispatcher.on(name, func)
            return func

        return register(handler) if handler is not None else register

    @property
    def is_connected(self) -> bool:
        return self._downchannel is not None and self._downchannel.alive

    @property
    def latest_dialog_request_id(self) -> str | None:
        return self._dispatcher.queue.latest_dialog_request_id

    async def connect(self) -> None:
        """Open the connection and downchannel and wait for ``Clova.Hello`` (B-CN-06).

        Raises :class:`AuthenticationFailed`, :class:`RequestFailed` or a
        :class:`TransportError` when the first attempt fails; afterwards outages are
        repaired in the background.
        """
        if self._started:
            return
        self._started = True
        self._dispatcher.start()
        try:
            await self._establish()
        except BaseException:
            await self.aclose()
            raise
        self._supervisor = asyncio.create_task(self._supervise(), name="cic-downchannel")
        if self._auth is not None:  # B-CN-05: renew before expires_in runs out, idle or not
            self._token_task = asyncio.create_task(self._auth.keep_fresh(), name="cic-token")

    async def aclose(self) -> None:
        """Close the connection and stop background tasks (queued directives are dropped)."""
        self._closing = True
        self._ready.set()
        tasks = [t for t in (self._supervisor, self._keepalive_task, self._token_task)
                 if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._dispatcher.stop()
        if self._conn is not None:
            await self._conn.aclose()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until a downchannel is up (e.g. after a reconnect)."""
        await asyncio.wait_for(self._wait_ready(), timeout)

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until every queued directive has been handled."""
        await self._dispatcher.wait_idle(timeout)

    async def ping(self) -> float:
        """One keep-alive round trip now (HTTP/2 PING or ``GET /ping``); returns seconds."""
        dc = await self._wait_ready()
        return await self._ping_once(dc.conn)

    def create_event(
        self,
        namespace: str,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        dialog_request_id: str | None = None,
    ) -> Event:
        """An event with a fresh messageId and the current context (B-EV-05..07)."""
        return Event.create(
            namespace,
            name,
            payload,
            dialog_request_id=dialog_request_id,
            context=list(self._context_provider()),
        )

    async def recognize_text(
        self,
        text: str,
        *,
        speech_id: str | None = None,
        explicit: bool | None = None,
        dialog_request_id: str | None = None,
    ) -> EventResponse:
        """Send ``TextRecognizer.Recognize`` under a new dialogue ID (B-DI-01, B-SR-07).

        For an ExpectSpeech follow-up pass ``speech_id``/``explicit`` and, per B-SR-06,
        the original ``dialog_request_id``.
        """
        payload: dict[str, Any] = {"text": text}
        if speech_id is not None:
            payload["speechId"] = speech_id
        if explicit is not None:
            payload["explicit"] = explicit
        dialog = dialog_request_id or new_id()
        event = self.create_event("TextRecognizer", "Recognize", payload, dialog_request_id=dialog)
        return await self.send_event(event)

    async def recognize_speech(
        self,
        audio: AsyncIterable[bytes],
        *,
        lang: str = "en",
        dialog_request_id: str | None = None,
        **payload: Any,
    ) -> EventResponse:
        """Send ``SpeechRecognizer.Recognize`` streaming 16 kHz L16 mono audio (B-AU-01/02)."""
        body = {"lang": lang, "profile": "CLOSE_TALK", "format": "AUDIO_L16_RATE_16000_CHANNELS_1"}
        body.update(payload)
        dialog = dialog_request_id or new_id()
        event = self.create_event("SpeechRecognizer", "Recognize", body, dialog_request_id=dialog)
        return await self.send_event(event, audio)

    async def recognize_wav(
        self,
        path: str | Path,
        *,
        speed: float = 1.0,
        lang: str = "en",
        dialog_request_id: str | None = None,
        **payload: Any,
    ) -> EventResponse:
        """Speak a WAV file (any rate and channel count, converted to 16 kHz L16 mono) as
        a device would: 200 ms parts in real time (``speed`` times faster; ``0``: no
        pacing), until StopCapture (B-SR-02) or the end of the file. Returns the answer.
        """
        return await self.recognize_speech(
            wav_source(path, speed=speed), lang=lang, dialog_request_id=dialog_request_id,
            **payload,
        )

    async def send_event(
        self,
        event: Event,
        audio: AsyncIterable[bytes] | None = None,
        *,
        timeout: Any = _DEFAULT,
    ) -> EventResponse:
        """``POST /v1/events`` and read the whole response (B-EV-01).

        The body is ``multipart/form-data``: the ``metadata`` JSON part, then ``audio``
        parts of 6,400 bytes streamed while the response is read (B-MP-05, B-AU-02).
        Directives of a 2xx response also go through the message queue to the
        handlers. A dialogRequestId becomes the latest dialogue ID once the server
        accepts the request (2xx), and is forgotten if it fails (B-DI-02/06). A 412
        re-establishes the downchannel and resends once (B-EV-10). Non-2xx answers are
        returned, not raised (see :meth:`EventResponse.raise_for_status`).
        """
        if timeout is _DEFAULT:
            timeout = self.request_timeout if audio is None else None
        if not event.context:
            event.context = list(self._context_provider())  # B-EV-07
        dispatcher = self._dispatcher
        dialog = event.header.dialog_request_id
        stop = asyncio.Event()
        settled = False

        def on_head(head: ResponseHead) -> None:
            nonlocal settled
            if dialog is not None and not settled:
                settled = True
                dispatcher.settle(dialog, 200 <= head.status < 300)

        if dialog is not None:
            # Accept this ID's directives (e.g. StopCapture) while the request is sent.
            dispatcher.queue.begin_dialogue(dialog)
            dispatcher.captures[dialog] = stop
        replay = ReplayableAudio(audio) if audio is not None else None
        try:
            async with asyncio.timeout(timeout):
                dc = await self._wait_ready()
                sent_with = await self._fresh_token()
                response = await self._exchange(dc, event, replay, stop, on_head)
                if (response.status == 401 and self._auth is not None
                        and await self._auth.unauthorized(sent_with)):
                    log.info("401 for %s: token refreshed, resending (B-CN-05)",
                             event.qualified_name)
                    if dialog is not None:
                        settled = False
                        dispatcher.queue.begin_dialogue(dialog)
                    response = await self._exchange(dc, event, replay, stop, on_head)
                if response.status == 412:
                    log.warning("412 for %s: re-establishing the downchannel and resending "
                                "(B-EV-10)", event.qualified_name)
                    if dialog is not None:
                        settled = False
                        dispatcher.queue.begin_dialogue(dialog)
                    await self._reestablish(dc)
                    dc = await self._wait_ready()
                    response = await self._exchange(dc, event, replay, stop, on_head)
        except BaseException:
            if dialog is not None and not settled:
                dispatcher.settle(dialog, False)  # B-DI-06: keep the previous latest ID
            raise
        finally:
            if dialog is not None:
                dispatcher.captures.pop(dialog, None)
        if response.status == 401:
            log.error("token refused (401) for %s: %s", event.qualified_name, response.description)
        elif not response.is_success:
            log.warning("event %s failed status=%d description=%s",
                        event.qualified_name, response.status, response.description)
        return response

    # ------------------------------------------------------------------ requests

    async def _exchange(
        self,
        dc: Downchannel,
        event: Event,
        audio: ReplayableAudio | None,
        stop: asyncio.Event,
        on_head: Callable[[ResponseHead], None],
    ) -> EventResponse:
        self._sources += 1
        return await exchange(dc.conn, f"{self._base_path}/v1/events", self._request_headers(),
                              event, audio, stop, on_head, self._dispatcher,
                              f"response#{self._sources}")

    def _request_headers(self) -> list[tuple[str, str]]:
        token = self._token() if callable(self._token) else self._token
        # B-CN-03 / B-UA-01: both on every request, not just the first.
        return [("authorization", f"Bearer {token}"), ("user-agent", self.user_agent)]

    # ------------------------------------------------------------------ downchannel

    async def _wait_ready(self) -> Downchannel:
        while True:
            if self._fatal is not None:
                raise self._fatal
            if self._closing or not self._started:
                raise NotConnected("the client is not connected (call connect())")
            if self._supervisor is not None and self._supervisor.done():
                raise NotConnected("the downchannel ended and auto_reconnect is off")
            dc = self._downchannel
            if dc is not None and dc.alive:
                return dc
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), self.connect_timeout)
            except TimeoutError:
                raise NotConnected("no downchannel: reconnecting to the server") from None

    async def _establish(self) -> Downchannel:
        async with self._establish_lock:
            if self._downchannel is not None and self._downchannel.alive:
                return self._downchannel
            conn = self._conn
            if conn is None or conn.is_closed:
                conn = await HTTP2Connection.open(
                    self._host,
                    self._port,
                    ssl_context=self._ssl,
                    server_hostname=self._server_hostname,
                    timeout=self.connect_timeout,
                )
                self._conn = conn
                if self._keepalive_task is not None:
                    self._keepalive_task.cancel()
                self._keepalive_task = asyncio.create_task(self._keep_alive(conn))
            try:
                dc = await self._open_downchannel_throttled(conn)
            except RequestFailed:
                raise  # the server answered: the connection itself is fine
            except BaseException:
                conn.abort("downchannel could not be opened")
                raise
            self._downchannel = dc
            self.downchannels_opened += 1
            self._ready.set()
            log.info("downchannel established source=%s", dc.source)
            return dc

    async def _open_downchannel_throttled(self, conn: HTTP2Connection) -> Downchannel:
        """B-DC-05: a 429 means too many downchannel requests in a short time (a quick
        restart, or the server closing one whose token died): wait and try again, for
        longer than the server's window, before giving up."""
        for delay in (*TOO_MANY_DOWNCHANNELS_DELAYS, None):
            try:
                return await self._open_downchannel_authenticated(conn)
            except RequestFailed as exc:
                if exc.status != 429 or delay is None:
                    raise
                log.warning("downchannel refused with 429; retrying in %.1f s (B-DC-05)", delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _fresh_token(self) -> str:
        if self._auth is not None:
            return await self._auth.ensure_fresh()
        return self._token() if callable(self._token) else self._token

    async def _open_downchannel_authenticated(self, conn: HTTP2Connection) -> Downchannel:
        """B-CN-05: with a token manager, a 401 refreshes the token and tries once more."""
        used = await self._fresh_token()
        try:
            return await self._open_downchannel(conn)
        except AuthenticationFailed:
            if self._auth is None or not await self._auth.unauthorized(used):
                raise
            log.info("downchannel refused (401): token refreshed, reconnecting (B-CN-05)")
            return await self._open_downchannel(conn)

    async def _open_downchannel(self, conn: HTTP2Connection) -> Downchannel:
        self._sources += 1
        return await open_downchannel(
            conn, f"{self._base_path}/v1/directives", self._request_headers(),
            self._dispatcher, f"downchannel#{self._sources}", self.connect_timeout,
        )

    async def _supervise(self) -> None:
        """Keep exactly one downchannel open (B-DC-03/07), reconnecting with backoff."""
        attempt = 0
        while not self._closing:
            dc = self._downchannel
            if dc is not None:
                reason = await pump(dc, self._dispatcher)
                if self._downchannel is dc:
                    self._downchannel = None
                if self._closing:
                    break
                log.warning("downchannel lost source=%s reason=%s", dc.source, reason)
                if time.monotonic() - dc.established_at >= _STABLE_SECONDS:
                    attempt = 0
                if self._downchannel is not None:
                    continue  # already replaced (412 handling)
            if not self.auto_reconnect:
                break
            delay = self._backoff.delay(attempt)
            attempt += 1
            await asyncio.sleep(delay)
            try:
                await self._establish()
            except (AuthenticationFailed, AuthAPIError) as exc:
                # A refused token whose refresh is refused too (or no token left after
                # a logout): only a new authorisation helps, retrying cannot.
                log.error("token refused while reconnecting; giving up: %s", exc)
                self._fatal = exc
                break
            except (TransportError, RequestFailed, OSError) as exc:
                log.warning("reconnect attempt %d failed: %s", attempt, exc)
            except Exception:
                # Never let a bug end the upkeep loop: the device would go deaf for good.
                log.exception("reconnect attempt %d failed unexpectedly", attempt)
        self._ready.set()  # wake waiters: they see the client is not coming back

    async def _reestablish(self, stale: Downchannel) -> None:
        async with self._establish_lock:
            if self._downchannel is stale:
                self._downchannel = None
                stale.stream.reset()
        await self._establish()

    # ------------------------------------------------------------------ keep-alive

    async def _keep_alive(self, conn: HTTP2Connection) -> None:
        while not conn.is_closed and self.ping_interval > 0:
            await asyncio.sleep(self.ping_interval)
            if conn.is_closed:
                return
            try:
                rtt = await self._ping_once(conn)
                log.debug("keep-alive ok rtt=%.3fs", rtt)
            except ConnectionClosed:
                return
            except (TransportError, TimeoutError) as exc:
                # B-KA-01: no ACK -> a new connection (and downchannel) at once.
                log.warning("keep-alive failed (%s): reconnecting", exc)
                conn.abort(f"keep-alive failed: {exc}")
                return

    async def _ping_once(self, conn: HTTP2Connection) -> float:
        if self.keepalive == "ping":
            return await conn.ping(self.ping_timeout)
        started = time.monotonic()
        stream = await conn.request("GET", f"{self._base_path}/ping", self._request_headers(),
                                    end_stream=True)
        try:
            async with asyncio.timeout(self.ping_timeout):
                await stream.response()
                await stream.read()
        except BaseException:
            stream.reset()
            raise
        return time.monotonic() - started
