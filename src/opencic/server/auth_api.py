"""The auth API over HTTP (auth.md), on the CIC port: ``<prefix>/authorize``,
``<prefix>/token``, ``<prefix>/terms`` (the page a 451's ``redirect_uri`` opens) and
``<prefix>/login`` (the companion-app sign-in page for headless devices, in
:mod:`opencic.server.login_page`).

``prefix`` is the ``auth_path_prefix`` setting (default ``/auth/v1``): the contract
leaves the auth base URI to the deployment (ambiguity #36). Every endpoint takes GET
or POST and reads its parameters from the query string *and* an
``application/x-www-form-urlencoded`` body (ambiguity #37); a parameter given twice
with different values is refused. Answers are JSON (``application/json``), never the
CIC multipart ``System.Exception``. Bodies are limited to :data:`MAX_AUTH_BODY` and
query strings to :data:`MAX_AUTH_QUERY`. ``/authorize`` and ``/token`` are each
rate-limited per client address *and* per ``client_id`` (429 with ``Retry-After``):
per address, so a client cannot escape the limit by inventing ``client_id`` values
(each ``/token`` costs a scrypt check of the secret); per ``client_id``, so guesses
against one product spread over many addresses are bounded too. Nothing of a
request's parameters is logged (the access log has the path only, without the query
string).
"""

from __future__ import annotations

import html
import json
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from ..auth.service import AuthError, AuthService
from ..protocol.ids import new_id
from .client_address import ClientAddress, parse_trusted_proxies
from .limits import RateLimiter, declared_length
from .login_page import LoginPage, message_page
from .services import Services

log = logging.getLogger("opencic.server")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_AUTH_BODY = 16 * 1024
MAX_AUTH_QUERY = 8 * 1024
# A body of unknown length is read (and dropped) up to this much before the 400, so
# Hypercorn, which kills the connection on DATA for an answered stream, rarely sees it.
MAX_AUTH_DISCARD = 64 * MAX_AUTH_BODY
MAX_FIELDS = 32
FORM_TYPE = "application/x-www-form-urlencoded"
AGREEMENT_SUCCESS = "clova://agreement-success"
AGREEMENT_FAILURE = "clova://agreement-failure"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _parse(raw: bytes, where: str, into: dict[str, str]) -> None:
    try:
        text = raw.decode("utf-8")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS,
                                       errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise AuthError(400, "invalid_request", f"the {where} is not valid URL-encoded "
                        f"UTF-8 with at most {MAX_FIELDS} fields") from None
    for name, value in pairs:
        if into.get(name, value) != value:
            raise AuthError(400, "invalid_request", f"parameter {name!r} given twice with "
                            "different values")
        into[name] = value


class AuthApi:
    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        prefix = settings.auth_path_prefix
        self.authorize_path = f"{prefix}/authorize"
        self.token_path = f"{prefix}/token"
        self.terms_path = f"{prefix}/terms"
        self.login_path = f"{prefix}/login"
        self.paths = {self.authorize_path, self.token_path, self.terms_path, self.login_path}
        limit, window = settings.auth_token_max_requests, settings.auth_token_window_seconds
        rate_limited = (self.authorize_path, self.token_path)
        self.per_peer = {p: RateLimiter(limit, window) for p in rate_limited}
        self.per_client = {p: RateLimiter(limit, window) for p in rate_limited}
        self.client_address = ClientAddress(parse_trusted_proxies(settings.trusted_proxies))
        # Hypercorn kills the connection on DATA for a stream already answered.
        self.read_before_refusing = settings.server == "hypercorn"
        self.service = AuthService(services.store, settings, on_revoke=self._revoked,
                                   on_rotate=self._rotated)
        self.login = LoginPage(self.service, self.login_path, settings.data_dir,
                               secure=settings.scheme == "https", terms_url=self._terms_url,
                               client_address=self.client_address)

    def handles(self, path: str) -> bool:
        return path in self.paths

    # ------------------------------------------------------------------ effects

    def _revoked(self, device_id: str, access_token: str) -> None:
        if self.services.token_cache is not None:
            self.services.token_cache.forget_token(access_token)
        channel = self.services.registry.get(device_id)
        if channel is not None:
            channel.close()  # the device's open downchannel ends (closing delimiter)

    def _rotated(self, device_id: str) -> None:
        if self.services.token_cache is not None:
            self.services.token_cache.forget_device(device_id)

    # ------------------------------------------------------------------ HTTP

    async def handle(self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any]) -> None:
        path = scope.get("path", "")
        state["drained"] = True  # we always read the whole (bounded) body ourselves
        if path == self.login_path:
            await self._login(scope, receive, send, state)
            return
        try:
            params = await self._params(scope, receive)
            if params.get("device_id"):
                state["device"] = params["device_id"][:128]
            if path == self.terms_path:
                await self._terms(scope, send, params, state)
                return
            retry = self._rate_limited(path, scope, params)
            if retry is not None:
                who, seconds = retry
                state["status"] = 429
                await _send_json(send, 429, {
                    "error": "slow_down",
                    "error_description": f"too many requests {who}; retry in {seconds} s",
                }, [(b"retry-after", str(seconds).encode())])
                return
            if path == self.token_path:
                result = await self.service.token(params)
            else:
                result = await self.service.authorize(
                    params, _header(scope, b"authorization"), lambda code: self._terms_url(scope, code))
        except AuthError as exc:
            state["status"] = exc.status
            await _send_json(send, exc.status, exc.to_json())
            return
        except Exception:
            trace = new_id()
            log.exception("auth API internal error", extra={"trace": trace, "path": path})
            state["status"] = 500
            await _send_json(send, 500, {"error": "server_error",
                                        "error_description": f"internal error (trace {trace})"})
            return
        state["status"] = result.status
        await _send_json(send, result.status, result.body)

    def _rate_limited(self, path: str, scope: Scope,
                      params: dict[str, str]) -> tuple[str, int] | None:
        """(whose limit, Retry-After seconds) when the request is over a limit."""
        if path not in self.per_peer:
            return None
        now = time.monotonic()
        peer = self.client_address.of(scope)
        if not self.per_peer[path].allow(peer, now):
            return "from this address", self.per_peer[path].retry_after(peer, now)
        client_id = params.get("client_id", "")[:128]
        if client_id and not self.per_client[path].allow(client_id, now):
            return "for this client_id", self.per_client[path].retry_after(client_id, now)
        return None

    async def _login(self, scope: Scope, receive: Receive, send: Send,
                     state: dict[str, Any]) -> None:
        """The login page answers in HTML, with its own security headers, even when
        the request itself is broken."""
        try:
            params = await self._params(scope, receive)
            await self.login.handle(scope, send, params, state)
        except AuthError as exc:
            await self.login.answer(send, state, exc.status, message_page(
                "Cannot sign in", exc.description))
        except Exception:
            trace = new_id()
            log.exception("login page internal error", extra={"trace": trace,
                                                             "path": self.login_path})
            await self.login.answer(send, state, 500, message_page(
                "Cannot sign in", f"Internal error (trace {trace}). Try again later."))

    async def _params(self, scope: Scope, receive: Receive) -> dict[str, str]:
        method = scope.get("method", "GET")
        length = declared_length(scope)
        if length is not None and length > MAX_AUTH_BODY and not self.read_before_refusing:
            raise _too_large()  # refused before a byte of it is read
        body = await self._body(receive)
        if method not in ("GET", "POST"):
            raise AuthError(400, "invalid_request", f"{method} is not allowed; use GET or POST")
        query = scope.get("query_string", b"")
        if len(query) > MAX_AUTH_QUERY:
            raise AuthError(400, "invalid_request",
                            f"the query string is longer than {MAX_AUTH_QUERY} bytes")
        params: dict[str, str] = {}
        _parse(query, "query string", params)
        if body:
            ctype = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            if ctype != FORM_TYPE:
                raise AuthError(400, "invalid_request", f"a request body must be {FORM_TYPE}")
            _parse(body, "body", params)
        return params

    @staticmethod
    async def _body(receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise AuthError(400, "invalid_request", "request ended before its body was complete")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= MAX_AUTH_BODY:
                chunks.append(chunk)
            elif size > MAX_AUTH_DISCARD:
                break  # stop reading: answer now
            if not message.get("more_body"):
                break
        if size > MAX_AUTH_BODY:
            raise _too_large()
        return b"".join(chunks)

    def _terms_url(self, scope: Scope, code: str) -> str:
        settings = self.services.settings
        authority = _header(scope, b"host") or _header(scope, b":authority")
        if not authority:
            authority = f"{settings.host}:{settings.port}"
        query = urllib.parse.urlencode({"code": code})
        return f"{settings.scheme}://{authority}{self.terms_path}?{query}"

    # ------------------------------------------------------------------ terms page

    async def _terms(self, scope: Scope, send: Send, params: dict[str, str],
                     state: dict[str, Any]) -> None:
        """auth.md §3.2: GET shows the terms with agree / disagree; POST answers with a
        302 to ``clova://agreement-success`` or ``clova://agreement-failure?error=…``.
        The code in the form (single use, short-lived, issued to this user) is what
        authorises the agreement."""
        code = params.get("code", "")
        if scope.get("method") == "GET":
            if not code or not await self.service.terms_pending(code):
                raise AuthError(400, "invalid_request", "the code is unknown, expired or "
                                "not waiting for a terms agreement")
            state["status"] = 200
            await _send(send, 200, _terms_page(self.terms_path, code).encode(),
                        "text/html; charset=utf-8")
            return
        agreed = params.get("agree") == "Y"
        if not code or not await self.service.answer_terms(code, agreed):
            location = f"{AGREEMENT_FAILURE}?error=terms_not_agreed"
        elif agreed:
            location = AGREEMENT_SUCCESS
        else:
            location = f"{AGREEMENT_FAILURE}?error=user-disagreement"
        state["status"] = 302
        await _send(send, 302, b"", None, [(b"location", location.encode())])


def _too_large() -> AuthError:
    return AuthError(400, "invalid_request", f"body is larger than {MAX_AUTH_BODY} bytes")


def _terms_page(action: str, code: str) -> str:
    code_attr = html.escape(code, quote=True)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>OpenCIC terms of use</title></head>
<body><h1>Terms of use</h1>
<p>This OpenCIC server stores your devices, their settings and what they send, to answer
them. Agree to continue.</p>
<form method="post" action="{html.escape(action, quote=True)}">
<input type="hidden" name="code" value="{code_attr}">
<button name="agree" value="Y">Agree</button>
<button name="agree" value="N">Disagree</button>
</form></body></html>
"""


async def _send(send: Send, status: int, body: bytes, content_type: str | None,
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    head = list(headers or [])
    if content_type is not None:
        head.append((b"content-type", content_type.encode()))
    head.append((b"content-length", str(len(body)).encode()))
    # The terms page must not be framed or cached (it carries a code).
    head += [(b"cache-control", b"no-store"), (b"x-frame-options", b"DENY")]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_json(send: Send, status: int, document: Any,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    # RFC 6749 §5.1: responses carrying tokens must not be cached.
    await _send(send, status, json.dumps(document).encode(), "application/json", headers)
