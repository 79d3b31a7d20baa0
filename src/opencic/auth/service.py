"""The auth API's rules (auth.md), apart from HTTP: what ``/authorize`` and ``/token``
decide for a set of parameters. The HTTP side is :mod:`opencic.server.auth_api`.

Status codes follow auth.md §6: ``/authorize`` 400/403/451 (423 is never produced:
OpenCIC has no "left Clova" state, a removed user is simply gone); ``/token`` 400 for
every problem of the ``authorization_code`` and ``refresh_token`` grants (the contract
lists no other), and 401 for bad client credentials or an unknown device/model on
``delete``. Error bodies are not defined by the contract; ours are RFC 6749-style
``{"error": "...", "error_description": "..."}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..state.base import Client, Store, User
from ..state.repositories import valid_identifier

Params = Mapping[str, str]

GRANT_TYPES = ("authorization_code", "refresh_token", "delete")


class AuthError(Exception):
    """An answer other than 200: HTTP status, error code and a description."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def to_json(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}


def _bad(description: str, error: str = "invalid_request") -> AuthError:
    return AuthError(400, error, description)


def _required(params: Params, *names: str) -> list[str]:
    missing = [n for n in names if not params.get(n)]
    if missing:
        raise _bad(f"missing parameter(s): {', '.join(missing)}")
    return [params[n] for n in names]


def _identifier(name: str, value: str) -> str:
    if not valid_identifier(value):
        raise _bad(f"{name} must be 1-128 printable characters without surrounding spaces")
    return value


@dataclass
class AuthResult:
    status: int
    body: dict[str, Any]


@dataclass
class AuthService:
    store: Store
    settings: Settings
    # Called after this process revoked a token (grant_type=delete): the server closes
    # the device's downchannel and forgets the cached grant.
    on_revoke: Callable[[str, str], None] = lambda device_id, access_token: None
    # Called after a refresh rotated a device's pair (its old access token is dead).
    on_rotate: Callable[[str], None] = lambda device_id: None
    clock: Callable[[], float] = field(default=time.time)

    # ------------------------------------------------------------------ /authorize

    async def authorize(self, params: Params, authorization: str | None,
                        terms_url: Callable[[str], str]) -> AuthResult:
        """auth.md §2.1. ``terms_url(code)``: the absolute URL of the terms page."""
        client_id, device_id, model_id, state = await self.check_request(
            params, require_response_type=True)
        request_vu = params.get("request_vu", "N") or "N"
        if request_vu not in ("Y", "N"):
            raise _bad("request_vu must be 'Y' or 'N'")
        user: User | None = None
        if authorization is not None:
            # An account token, when sent, is always checked (and wins over request_vu).
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                user = await self.store.account_tokens.lookup(token.strip())
            if user is None:
                raise AuthError(403, "access_denied", "the account token is invalid")
        elif request_vu == "Y":
            if not self.settings.auth_guest_mode:
                raise AuthError(403, "access_denied", "guest mode is disabled on this server")
        else:
            raise AuthError(403, "access_denied", "missing 'Authorization: Bearer <account "
                            "token>' (or request_vu=Y for a guest code)")
        return await self.issue_code(user, client_id, device_id, model_id, state, terms_url)

    async def check_request(self, params: Params, *, require_response_type: bool = False
                            ) -> tuple[str, str, str, str]:
        """The parameters ``/authorize`` and the login page share, checked:
        ``(client_id, device_id, model_id, state)``; AuthError 400 otherwise."""
        names = ["client_id", "device_id", "model_id", "state"]
        if require_response_type:
            names.append("response_type")
        client_id, device_id, model_id, state, *rest = _required(params, *names)
        if rest and rest[0] != "code":
            raise _bad("response_type must be 'code'", "unsupported_response_type")
        _identifier("device_id", device_id)
        _identifier("model_id", model_id)
        if not valid_identifier(client_id) or await self.store.clients.get(client_id) is None:
            raise _bad("unknown client_id", "invalid_client")
        return client_id, device_id, model_id, state

    async def issue_code(self, user: User | None, client_id: str, device_id: str, model_id: str,
                         state: str, terms_url: Callable[[str], str]) -> AuthResult:
        """A code for ``user`` (None: a guest code), as ``/authorize`` issues it: 200, or
        451 with the terms page while the user has not agreed (``auth_require_terms``)."""
        pending = (user is not None and self.settings.auth_require_terms
                   and not await self.store.account_tokens.terms_agreed(user.user_id))
        code = await self.store.auth_codes.issue(
            client_id=client_id, user_id=None if user is None else user.user_id,
            device_id=device_id, model_id=model_id, ttl=self.settings.auth_code_ttl_seconds,
            guest=user is None, terms_pending=pending, now=self.clock())
        if pending:
            return AuthResult(451, {"code": code, "redirect_uri": terms_url(code), "state": state})
        return AuthResult(200, {"code": code, "state": state})

    # ------------------------------------------------------------------ terms page

    async def terms_pending(self, code: str) -> bool:
        return await self.store.auth_codes.pending_user(code, now=self.clock()) is not None

    async def answer_terms(self, code: str, agreed: bool) -> bool:
        """The user's answer on the terms page; False if the code is not waiting for it."""
        now = self.clock()
        user_id = await self.store.auth_codes.pending_user(code, now=now)
        if user_id is None:
            return False
        if not agreed:
            await self.store.auth_codes.discard(code)
            return True
        await self.store.account_tokens.agree_terms(user_id, now=now)
        return await self.store.auth_codes.release(code, now=now)

    # ------------------------------------------------------------------ /token

    async def token(self, params: Params) -> AuthResult:
        grant_type = params.get("grant_type", "")
        if not grant_type:
            raise _bad("missing parameter(s): grant_type")
        if grant_type not in GRANT_TYPES:
            raise _bad(f"grant_type must be one of {', '.join(GRANT_TYPES)}",
                       "unsupported_grant_type")
        client_id, secret = _required(params, "client_id", "client_secret")
        client = await self._client(client_id, secret, status=401 if grant_type == "delete" else 400)
        if grant_type == "authorization_code":
            return await self._exchange_code(client, params)
        if grant_type == "refresh_token":
            return await self._refresh(client, params)
        return await self._delete(client, params)

    async def _client(self, client_id: str, secret: str, *, status: int) -> Client:
        client = None
        if valid_identifier(client_id) and len(secret) <= 512:
            client = await self.store.clients.verify(client_id, secret)
        if client is None:
            raise AuthError(status, "invalid_client", "client_id or client_secret is wrong")
        return client

    def _pair(self, access: str, refresh: str | None, expires_at: float) -> AuthResult:
        return AuthResult(200, {
            "access_token": access,
            # round, not int: a token issued a few ms ago still has its whole lifetime
            "expires_in": max(0, round(expires_at - self.clock())),
            "refresh_token": refresh,
            "token_type": "Bearer",
        })

    async def _exchange_code(self, client: Client, params: Params) -> AuthResult:
        code, device_id, model_id = _required(params, "code", "device_id", "model_id")
        now = self.clock()
        claimed = await self.store.auth_codes.claim(
            code, client_id=client.client_id, device_id=device_id, model_id=model_id, now=now)
        if claimed is None:
            raise _bad("the code is unknown, used, expired, waiting for the terms agreement, "
                       "or was issued for another client_id, device_id or model_id",
                       "invalid_grant")
        existing = await self.store.devices.get(device_id)
        if (existing is not None and existing.user_id is not None
                and existing.user_id != claimed.user_id):
            # Nobody takes over another account's device by knowing its id.
            raise _bad("device_id is registered to another account", "invalid_grant")
        await self.store.devices.register(device_id, user_id=claimed.user_id,
                                          client_id=client.client_id, model_id=model_id, now=now)
        issued = await self.store.tokens.issue(
            device_id, ttl=self.settings.token_ttl_seconds,
            refresh_ttl=self.settings.refresh_token_ttl_seconds, user_id=claimed.user_id,
            client_id=client.client_id, guest=claimed.guest, now=now)
        return self._pair(issued.access_token, issued.refresh_token, issued.expires_at)

    async def _refresh(self, client: Client, params: Params) -> AuthResult:
        refresh_token, _model_id = _required(params, "refresh_token", "model_id")
        device_id = params.get("device_id") or None  # Optional (ambiguity #38)
        if device_id is not None:
            device = await self.store.devices.get(device_id)
            if device is None or device.model_id not in (None, params["model_id"]):
                raise _bad("unknown device_id or model_id", "invalid_grant")
        issued = await self.store.tokens.refresh(
            refresh_token, ttl=self.settings.token_ttl_seconds,
            refresh_ttl=self.settings.refresh_token_ttl_seconds, client_id=client.client_id,
            device_id=device_id, now=self.clock())
        if issued is None:
            raise _bad("the refresh token is unknown, already used, revoked or expired",
                       "invalid_grant")
        self.on_rotate(issued.device_id)
        return self._pair(issued.access_token, issued.refresh_token, issued.expires_at)

    async def _delete(self, client: Client, params: Params) -> AuthResult:
        access_token, device_id, model_id = _required(params, "access_token", "device_id",
                                                      "model_id")
        device = await self.store.devices.get(device_id)
        if device is None or device.model_id != model_id:
            raise AuthError(401, "invalid_client", "unknown device_id or model_id")
        grant = await self.store.tokens.lookup(access_token, now=self.clock())
        if grant is None:
            raise _bad("the access token is unknown, revoked or expired", "invalid_grant")
        if grant.device_id != device_id or grant.client_id != client.client_id:
            raise _bad("the access token was not issued to this client_id and device_id",
                       "invalid_grant")
        await self.store.tokens.revoke(access_token)
        self.on_revoke(device_id, access_token)
        return AuthResult(200, {
            "access_token": access_token,
            "client_id": client.client_id,
            "expires_in": max(0, round(grant.expires_at - self.clock())),
        })
