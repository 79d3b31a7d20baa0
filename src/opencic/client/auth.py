"""The client side of the auth API (auth.md, B-CN-05): obtain, store, refresh and
revoke a device's Clova access token.

::

    auth = TokenManager("https://cic.example:8443/auth/v1", client_id, client_secret,
                        device_id, model_id, refresh_token=saved_refresh_token,
                        on_update=save)          # persist each new pair
    async with CICClient("https://cic.example:8443", auth) as client:
        ...

Given as the ``token`` of :class:`~opencic.client.sdk.CICClient`, the manager is asked
for a fresh token before each downchannel and event (refreshing ``refresh_margin``
seconds before ``expires_in`` runs out) and, on a 401, refreshes once and the client
retries/reconnects. The auth base URI is deployment configuration (ambiguity #36);
OpenCIC serves it at ``/auth/v1`` on the CIC port by default (a URL without a path
means that). :func:`request_code` is the companion-app step (``/authorize``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .connection import HTTP2Connection, make_ssl_context
from .errors import ClientError, TransportError

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


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: float  # POSIX seconds

    def to_json(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token,
                "expires_at": self.expires_at}


@runtime_checkable
class TokenRefresher(Protocol):
    """What :class:`CICClient` uses of a token manager besides calling it."""

    def __call__(self) -> str: ...
    async def ensure_fresh(self) -> str: ...
    async def unauthorized(self, rejected: str) -> bool: ...


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

    Start from a saved pair (``access_token``/``refresh_token``/``expires_at``), or from
    only a ``refresh_token``, or call :meth:`exchange_code` with a code from
    ``/authorize``. ``on_update`` gets every new :class:`TokenSet` (store it: a
    refresh token works once).
    """

    def __init__(self, server: str, client_id: str, client_secret: str, device_id: str,
                 model_id: str = "OpenCIC", *, access_token: str | None = None,
                 refresh_token: str | None = None, expires_at: float | None = None,
                 refresh_margin: float = 60.0, on_update: Callable[[TokenSet], None] | None = None,
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
        self._tokens: TokenSet | None = None
        if access_token is not None or refresh_token is not None:
            # Without an expiry, an access token is used until refused (401).
            self._tokens = TokenSet(access_token or "", refresh_token,
                                    expires_at if expires_at is not None else float("inf"))
        self._lock = asyncio.Lock()
        self.refreshes = 0

    @property
    def tokens(self) -> TokenSet | None:
        return self._tokens

    def __call__(self) -> str:
        """The current access token (what :class:`CICClient` puts in each request)."""
        return self._tokens.access_token if self._tokens is not None else ""

    def __repr__(self) -> str:  # never show the tokens
        return f"TokenManager(device_id={self.device_id!r}, client_id={self.client_id!r})"

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
        expires_at = time.time() + float(expires_in) if isinstance(expires_in, int | float) else float("inf")
        refresh = doc.get("refresh_token")
        tokens = TokenSet(doc["access_token"], refresh if isinstance(refresh, str) else None,
                          expires_at)
        self._tokens = tokens
        if self.on_update is not None:
            self.on_update(tokens)
        return tokens

    async def exchange_code(self, code: str) -> TokenSet:
        """``grant_type=authorization_code`` (auth.md §2.2)."""
        async with self._lock:
            return await self._grant({**self._credentials("authorization_code"), "code": code})

    async def refresh(self) -> TokenSet:
        """``grant_type=refresh_token`` (auth.md §2.3): rotation, the new pair is kept."""
        async with self._lock:
            return await self._refresh_locked()

    async def _refresh_locked(self) -> TokenSet:
        if self._tokens is None or self._tokens.refresh_token is None:
            raise AuthAPIError(400, "invalid_request", "no refresh token to refresh with")
        tokens = await self._grant({**self._credentials("refresh_token"),
                                    "refresh_token": self._tokens.refresh_token})
        self.refreshes += 1
        log.info("access token refreshed device=%s", self.device_id)
        return tokens

    async def revoke(self) -> dict[str, Any]:
        """``grant_type=delete`` (auth.md §2.4): the server closes the downchannel."""
        async with self._lock:
            if self._tokens is None:
                raise AuthAPIError(400, "invalid_request", "no access token to revoke")
            status, doc = await self._ep.call(
                "token", {**self._credentials("delete"), "access_token": self._tokens.access_token})
            if status != 200:
                raise AuthAPIError(status, doc.get("error"), doc.get("error_description"), doc)
            self._tokens = None
            return doc

    # ------------------------------------------------------------------ for CICClient

    async def ensure_fresh(self) -> str:
        """The access token, refreshed first when it expires within ``refresh_margin``."""
        tokens = self._tokens
        if tokens is not None and tokens.access_token and \
                tokens.expires_at - time.time() > self.refresh_margin:
            return tokens.access_token
        async with self._lock:
            tokens = self._tokens
            if tokens is not None and tokens.access_token and \
                    tokens.expires_at - time.time() > self.refresh_margin:
                return tokens.access_token  # another task refreshed meanwhile
            return (await self._refresh_locked()).access_token

    async def unauthorized(self, rejected: str) -> bool:
        """A request with ``rejected`` got 401: refresh (once for all concurrent
        callers). True if there is a new token to retry with; False if the refresh
        token was refused too (the device must be authorised again)."""
        async with self._lock:
            if self._tokens is not None and self._tokens.access_token != rejected:
                return True  # already refreshed by someone else
            try:
                await self._refresh_locked()
            except AuthAPIError as exc:
                log.error("refresh refused device=%s: %s", self.device_id, exc)
                return False
            return True
