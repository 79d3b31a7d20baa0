"""A short-lived, in-process cache of live token grants for the request hot path.

Every CIC request carries a bearer token (B-CN-03). Looking it up in the database
costs a hop to the database thread (SQLite) or a round trip (PostgreSQL): measured at
100 concurrent streams, that halved the text round trip's req/s. A grant is kept for
``ttl`` seconds; its own expiry is checked on every hit, so an expired token is refused
at once. Revocations made in this process invalidate at once; one made elsewhere (the
CLI, another node) takes effect within ``ttl`` seconds. Unknown tokens are never
cached, so a new token works at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from ..state.base import TokenGrant
from ..state.hashing import token_hash


class TokenLookup(Protocol):
    async def lookup(self, access_token: str, *, now: float | None = None) -> TokenGrant | None: ...


class TokenCache:
    def __init__(self, tokens: TokenLookup, *, ttl: float = 5.0, max_entries: int = 100_000) -> None:
        self._tokens = tokens
        self.ttl = ttl
        self.max_entries = max_entries
        self._grants: OrderedDict[str, tuple[float, TokenGrant]] = OrderedDict()

    async def lookup(self, access_token: str) -> TokenGrant | None:
        if self.ttl <= 0:
            return await self._tokens.lookup(access_token)
        key = token_hash(access_token)
        now = time.time()
        cached = self._grants.get(key)
        if cached is not None:
            cached_at, known = cached
            if now - cached_at < self.ttl and known.expires_at > now:
                return known
            del self._grants[key]
        grant = await self._tokens.lookup(access_token, now=now)
        if grant is not None:
            self._grants[key] = (now, grant)
            if len(self._grants) > self.max_entries:
                self._grants.popitem(last=False)
        return grant

    def forget_token(self, access_token: str) -> None:
        self._grants.pop(token_hash(access_token), None)

    def forget_hashes(self, hashes: set[str]) -> None:
        for key in hashes:
            self._grants.pop(key, None)

    def forget_device(self, device_id: str) -> None:
        for key in [k for k, (_, g) in self._grants.items() if g.device_id == device_id]:
            del self._grants[key]
