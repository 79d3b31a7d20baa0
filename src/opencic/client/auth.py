"""The client side of the auth API (auth.md, B-CN-05): obtain, store, refresh and
revoke a device's Clova access token.

::

    store = TokenFile("kitchen.tokens.json")      # JSON, 0600, atomic writes
    auth = TokenManager("https://cic.example:8443/auth/v1", client_id, client_secret,
                        device_id, model_id, store=store)
    if auth.tokens is None:                       # first start: a code from /authorize
        await auth.exchange_code(code)            # (companion app or login page)
    async with CICClient("https://cic.example:8443", auth) as client:
        ...
    await auth.revoke()                           # logout: delete, and the file goes

Given as the ``token`` of :class:`~opencic.client.sdk.CICClient`, the manager is asked
for a fresh token before each downchannel and event (refreshing ``refresh_margin``
seconds before ``expires_in`` runs out, and in the background while idle) and, on a
401, refreshes once and the client retries/reconnects (B-ST-04). Every new pair is
saved before it is used (a refresh token works once). The auth base URI is deployment
configuration (ambiguity #36); OpenCIC serves it at ``/auth/v1`` on the CIC port by
default (a URL without a path means that). :func:`request_code` is the companion-app
step (``/authorize``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from .connection import HTTP2Connection, make_ssl_context
from .errors import ClientError, TransportError
from .tokenstore import SavedTokens, TokenFile, TokenFileError, TokenSet

__all__ = ["AuthAPIError", "AuthServerUnavailable", "SavedTokens", "TokenFile",
           "TokenFileError", "TokenManager", "TokenRefresher", "TokenSet", "request_code"]

log = logging.getLogger("opencic.client")

DEFAULT_AUTH_PATH = "/auth/v1"
MAX_RESPONSE_BYTES = 64 * 1024


class AuthAPIError(ClientError):
    """The auth API refused a request (4xx): ``status``, ``error``, ``description``."""

    def __init__(self, status: int, error: str | None, description: str | None,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(f"auth API HTTP {status}: {error or ''} {description or ''}".strip())
        self.status = status
        self.error = error
        self.description = description
        self.body = body or {}


class AuthServerUnavailable(TransportError):
    """The auth API could not be reached or answered 5xx/429: worth retrying later."""


@runtime_checkable
class TokenRefresher(Protocol):
    """What :class:`CICClient` uses of a token manager besides calling it."""

    def __call__(self) -> str: ...
    async def ensure_fresh(self) -> str: ...
    async def unauthorized(self, rejected: str) -> bool: ...
    async def keep_fresh(self) -> None: ...


class _Endpoint:
    def __init__(self, server: str, *, cafile: str | None, insecure: bool,
                 ssl_context: ssl.SSLContext | None, timeout: float) -> None:
        url = urllib.parse.urlsplit(server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"auth server must be http(s)://host[:port][/path], got {server!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.path = url.path.rstrip("/") or DEFAULT_AUTH_PATH
        self.ssl = None
        if url.scheme == "https":
            self.ssl = ssl_context or make_ssl_context(cafile=cafile, insecure=insecure)
        self.timeout = timeout

    async def call(self, endpoint: str, params: dict[str, str],
                   headers: Sequence[tuple[str, str]] = ()) -> tuple[int, dict[str, Any]]:
        """POST a form to ``<path>/<endpoint>``; (status, JSON body)."""
        body = urllib.parse.urlencode(params).encode()
        try:
            conn = await HTTP2Connection.open(self.host, self.port, ssl_context=self.ssl,
                                              timeout=self.timeout)
        except TransportError as exc:
            raise AuthServerUnavailable(str(exc)) from exc
        try:
            async with asyncio.timeout(self.timeout):
                stream = await conn.request("POST", f"{self.path}/{endpoint}", [
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("accept", "application/json"),
                    ("content-length", str(len(body))),
                    *headers,
                ])
                await stream.send(body, end_stream=True)
                head = await stream.response()
                raw = await stream.read()
        except (TransportError, TimeoutError) as exc:
            raise AuthServerUnavailable(f"auth API request failed: {exc}") from exc
        finally:
            await conn.aclose()
        try:
            doc = json.loads(raw[:MAX_RESPONSE_BYTES]) if raw else {}
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        if head.status >= 500 or head.status == 429:
            raise AuthServerUnavailable(f"auth API HTTP {head.status}: {doc.get('error_description')}")
        return head.status, doc


async def request_code(server: str, *, client_id: str, device_id: str, model_id: str,
                       state: str, account_token: str | None = None, guest: bool = False,
                       cafile: str | None = None, insecure: bool = False,
                       ssl_context: ssl.SSLContext | None = None,
                       timeout: float = 10.0) -> dict[str, Any]:
    """``/authorize`` (the companion-app step, auth.md §2.1): the answer's JSON, which
    holds ``code`` and ``state`` (and ``redirect_uri`` when the terms must be agreed:
    then :class:`AuthAPIError` with status 451 carries it in ``body``)."""
    ep = _Endpoint(server, cafile=cafile, insecure=insecure, ssl_context=ssl_context,
                   timeout=timeout)
    params = {"client_id": client_id, "device_id": device_id, "model_id": model_id,
              "response_type": "code", "state": state}
    headers: list[tuple[str, str]] = []
    if guest:
        params["request_vu"] = "Y"
    if account_token is not None:
        headers.append(("authorization", f"Bearer {account_token}"))
    status, doc = await ep.call("authorize", params, headers)
    if status != 200:
        raise AuthAPIError(status, doc.get("error"), doc.get("error_description"), doc)
    return doc


class TokenManager:
    """Holds a device's token pair and renews it through ``/token`` (B-CN-05).

    Start from a :class:`~opencic.client.tokenstore.TokenFile` (``store=``: loaded
    now, saved on every new pair, removed by :meth:`revoke`), or from a pair given
    directly (``access_token``/``refresh_token``/``expires_at``, or only a
    ``refresh_token``), or call :meth:`exchange_code` with a code from ``/authorize``.
    ``on_update`` also gets every new :class:`TokenSet`.

    A refresh token works once, so a new pair is written to the store before anything
    uses it; if that write fails the pair is kept in memory (it is the only live one),
    :class:`TokenFileError` is raised, and every later :meth:`ensure_fresh` tries the
    write again and refuses to hand the token out until it succeeds. What no client
    can close is the window between the server committing a rotation and the answer
    reaching the disk (a crash, or the answer lost on the way): the saved pair is then
    dead and the device must be authorised again.
    """

    def __init__(self, server: str, client_id: str, client_secret: str, device_id: str,
                 model_id: str = "OpenCIC", *, access_token: str | None = None,
                 refresh_token: str | None = None, expires_at: float | None = None,
                 store: TokenFile | None = None, refresh_margin: float = 60.0,
                 on_update: Callable[[TokenSet], None] | None = None,
                 cafile: str | None = None, insecure: bool = False,
                 ssl_context: ssl.SSLContext | None = None, timeout: float = 10.0) -> None:
        self._ep = _Endpoint(server, cafile=cafile, insecure=insecure, ssl_context=ssl_context,
                             timeout=timeout)
        self.client_id = client_id
        self._secret = client_secret
        self.device_id = device_id
        self.model_id = model_id
        self.refresh_margin = refresh_margin
        self.on_update = on_update
        self.store = store
        self._tokens: TokenSet | None = None
        self._unsaved = False  # the pair in memory is not in the store yet
        if store is not None:
            if access_token is not None or refresh_token is not None:
                raise ValueError("give either saved tokens or a store, not both")
            self._tokens = self._load()
        elif access_token is not None or refresh_token is not None:
            # Without an expiry, an access token is used until refused (401).
            self._tokens = TokenSet(access_token or "", refresh_token,
                                    expires_at if expires_at is not None else float("inf"))
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()  # a new pair: wakes keep_fresh()
        self.refreshes = 0

    @property
    def tokens(self) -> TokenSet | None:
        return self._tokens

    def __call__(self) -> str:
        """The current access token (what :class:`CICClient` puts in each request)."""
        return self._tokens.access_token if self._tokens is not None else ""

    def __repr__(self) -> str:  # never show the tokens
        return f"TokenManager(device_id={self.device_id!r}, client_id={self.client_id!r})"

    # ------------------------------------------------------------------ the store

    def _load(self) -> TokenSet | None:
        assert self.store is not None
        saved = self.store.load()
        if saved is None:
            return None
        mine = (self.client_id, self.device_id, self.model_id)
        theirs = (saved.client_id, saved.device_id, saved.model_id)
        if theirs != mine:
            raise TokenFileError(
                f"{self.store.path} holds the tokens of client_id={theirs[0]!r} "
                f"device_id={theirs[1]!r} model_id={theirs[2]!r}, not of client_id={mine[0]!r} "
                f"device_id={mine[1]!r} model_id={mine[2]!r}")
        return saved.tokens

    def _save_pending(self) -> None:
        if self._unsaved and self.store is not None and self._tokens is not None:
            self.store.save(SavedTokens(self.client_id, self.device_id, self.model_id,
                                        self._tokens))
            self._unsaved = False

    def _keep(self, tokens: TokenSet) -> None:
        """A new pair from the server: on disk first, then in use."""
        self._tokens = tokens
        self._unsaved = self.store is not None
        self._changed.set()
        self._save_pending()
        if self.on_update is not None:
            self.on_update(tokens)

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        """One renewal at a time: among this process's tasks, and (with a store) among
        the processes sharing the file, each starting from what the file holds."""
        async with self._lock:
            if self.store is None:
                yield
                return
            async with self.store.lock():
                if self._unsaved:
                    self._save_pending()  # ours is newer than the file's: never go back
                else:
                    on_disk = self._load()
                    if on_disk is not None and on_disk != self._tokens:
                        # Another process refreshed (our pair died with that rotation).
                        log.info("using the token pair another process saved device=%s",
                                 self.device_id)
                        self._tokens = on_disk
                yield

    # ------------------------------------------------------------------ grants

    def _credentials(self, grant_type: str) -> dict[str, str]:
        return {"grant_type": grant_type, "client_id": self.client_id,
                "client_secret": self._secret, "device_id": self.device_id,
                "model_id": self.model_id}

    async def _grant(self, params: dict[str, str]) -> TokenSet:
        status, doc = await self._ep.call("token", params)
        if status != 200 or not isinstance(doc.get("access_token"), str):
            raise AuthAPIError(status, doc.get("error"), doc.get("error_description"), doc)
        expires_in = doc.get("expires_in")
        lifetime: float | None = None
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            lifetime = float(expires_in)
            expires_at = time.time() + lifetime
        else:
            expires_at = float("inf")
        refresh = doc.get("refresh_token")
        tokens = TokenSet(doc["access_token"], refresh if isinstance(refresh, str) else None,
                          expires_at, lifetime)
        self._keep(tokens)
        return tokens

    async def exchange_code(self, code: str) -> TokenSet:
        """``grant_type=authorization_code`` (auth.md §2.2); replaces any saved pair."""
        async with self._locked():
            return await self._grant({**self._credentials("authorization_code"), "code": code})

    async def refresh(self) -> TokenSet:
        """``grant_type=refresh_token`` (auth.md §2.3): rotation, the new pair is kept."""
        async with self._locked():
            return await self._refresh_locked()

    async def _refresh_locked(self) -> TokenSet:
        if self._tokens is None or self._tokens.refresh_token is None:
            raise AuthAPIError(400, "invalid_request", "no refresh token to refresh with "
                               "(the device has not been authorised)")
        tokens = await self._grant({**self._credentials("refresh_token"),
                                    "refresh_token": self._tokens.refresh_token})
        self.refreshes += 1
        log.info("access token refreshed device=%s", self.device_id)
        return tokens

    async def revoke(self) -> dict[str, Any]:
        """``grant_type=delete`` (auth.md §2.4), then the store's file is removed. The
        server closes the device's downchannel. An expired access token is refreshed
        first: the server only deletes a live one (and the pair with it)."""
        async with self._locked():
            if self._tokens is None or not self._tokens.access_token:
                raise AuthAPIError(400, "invalid_request", "no access token to revoke")
            if self._tokens.expires_at <= time.time() + 1:
                await self._refresh_locked()
            status, doc = await self._ep.call(
                "token", {**self._credentials("delete"), "access_token": self._tokens.access_token})
            if status != 200:
                raise AuthAPIError(status, doc.get("error"), doc.get("error_description"), doc)
            self._tokens = None
            self._unsaved = False
            if self.store is not None:
                self.store.clear()
            return doc

    # ------------------------------------------------------------------ for CICClient

    def _margin(self) -> float:
        # Tokens shorter-lived than the margin would be refreshed before every request
        # (and keep_fresh would spin): renew at half-life at the latest instead.
        lifetime = self._tokens.lifetime if self._tokens is not None else None
        if lifetime is None:
            return self.refresh_margin
        return min(self.refresh_margin, lifetime / 2)

    def _fresh(self, tokens: TokenSet | None) -> bool:
        return (tokens is not None and bool(tokens.access_token)
                and tokens.expires_at - time.time() > self._margin())

    async def ensure_fresh(self) -> str:
        """The access token, refreshed first when it expires within the margin."""
        tokens = self._tokens
        if self._fresh(tokens) and not self._unsaved:
            assert tokens is not None
            return tokens.access_token
        async with self._locked():  # retries a failed save before anything else
            tokens = self._tokens
            if self._fresh(tokens):
                assert tokens is not None
                return tokens.access_token  # another task or process refreshed meanwhile
            return (await self._refresh_locked()).access_token

    async def unauthorized(self, rejected: str) -> bool:
        """A request with ``rejected`` got 401: refresh (once for all concurrent
        callers and processes). True if there is a new token to retry with; False if
        the refresh token was refused too (the device must be authorised again)."""
        async with self._locked():
            tokens = self._tokens
            if tokens is not None and tokens.access_token and tokens.access_token != rejected:
                return True  # already refreshed by another task or process
            try:
                await self._refresh_locked()
            except AuthAPIError as exc:
                log.error("refresh refused device=%s: %s", self.device_id, exc)
                return False
            return True

    async def keep_fresh(self) -> None:
        """Refresh shortly before ``expires_in`` runs out, also while the device is idle
        (B-CN-05): requests then never wait for ``/token`` and the saved pair stays
        current. :class:`CICClient` runs this while connected. Returns when the refresh
        token is refused (the next request reports it); retries when the auth server
        is unreachable."""
        failures = 0
        while True:
            tokens = self._tokens
            delay = 3600.0 if tokens is None else tokens.expires_at - self._margin() - time.time()
            if delay > 0:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(delay, 3600.0))
                continue
            try:
                await self.ensure_fresh()
                failures = 0
                if not self._fresh(self._tokens):
                    await asyncio.sleep(1.0)  # a server issuing ~0 s tokens must not spin us
            except AuthAPIError as exc:
                log.error("background refresh refused device=%s: %s", self.device_id, exc)
                return
            except ClientError as exc:  # the auth server is unreachable, or the file
                failures += 1
                wait = min(60.0, 2.0 ** failures)
                log.warning("background refresh failed device=%s (%s); retrying in %.0f s",
                            self.device_id, exc, wait)
                await asyncio.sleep(wait)
