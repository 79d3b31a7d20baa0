"""Device tokens (B-CN-03/04): access + refresh pairs, stored as SHA-256 hashes only.

A row is one pair. Refreshing rotates: the old pair is revoked and a new one issued
in the same transaction, and the claim on the old refresh token is a single
conditional UPDATE, so two concurrent refreshes with the same token cannot both win
(PostgreSQL re-checks the WHERE clause after the row lock; SQLite runs writers one
at a time).
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import IssuedToken, TokenGrant
from .driver import Driver, Executor
from .hashing import MAX_TOKEN_LENGTH, new_token, token_hash
from .repositories import now_or, valid_identifier

__all__ = ["MAX_TOKEN_LENGTH", "SqlTokens", "valid_device_id"]

_INSERT = (
    "INSERT INTO tokens(access_hash, refresh_hash, device_id, user_id, client_id, created_at,"
    " expires_at, refresh_expires_at, revoked, guest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, FALSE, ?)"
)


# Hashes per query in live_among: well under SQLite's 32766 host parameters, and one
# query stays short enough not to hold the database thread up for long.
_LIVE_BATCH = 500


def valid_device_id(device_id: str) -> bool:
    return valid_identifier(device_id)


def _usable(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH


class SqlTokens:
    def __init__(self, db: Driver) -> None:
        self._db = db

    @staticmethod
    async def _insert(ex: Executor, device_id: str, *, ttl: float, refresh_ttl: float | None,
                      user_id: str | None, client_id: str | None, guest: bool,
                      now: float) -> IssuedToken:
        if ttl <= 0 or (refresh_ttl is not None and refresh_ttl <= 0):
            raise ValueError("token lifetimes must be positive")
        access = new_token()
        refresh = None if refresh_ttl is None else new_token()
        issued = IssuedToken(access, refresh, device_id, now + ttl,
                             None if refresh_ttl is None else now + refresh_ttl)
        await ex.execute(
            _INSERT, token_hash(access), None if refresh is None else token_hash(refresh),
            device_id, user_id, client_id, now, issued.expires_at, issued.refresh_expires_at,
            guest,
        )
        return issued

    async def issue(self, device_id: str, *, ttl: float, refresh_ttl: float | None = None,
                    user_id: str | None = None, client_id: str | None = None,
                    guest: bool = False, now: float | None = None) -> IssuedToken:
        if not valid_device_id(device_id):
            raise ValueError("device id must be 1-128 printable characters without surrounding spaces")
        return await self._insert(self._db, device_id, ttl=ttl, refresh_ttl=refresh_ttl,
                                  user_id=user_id, client_id=client_id, guest=guest,
                                  now=now_or(now))

    async def issue_many(self, device_ids: Sequence[str], *, ttl: float,
                         now: float | None = None) -> list[IssuedToken]:
        if ttl <= 0:
            raise ValueError("token lifetimes must be positive")
        created = now_or(now)
        issued = [IssuedToken(new_token(), None, d, created + ttl, None) for d in device_ids]
        await self._db.executemany(
            _INSERT,
            [(token_hash(t.access_token), None, t.device_id, None, None, created, t.expires_at,
              None, False) for t in issued],
        )
        return issued

    async def lookup(self, access_token: str, *, now: float | None = None) -> TokenGrant | None:
        if not _usable(access_token):
            return None
        row = await self._db.fetchrow(
            "SELECT device_id, user_id, client_id, expires_at, guest FROM tokens"
            " WHERE access_hash = ? AND NOT revoked AND expires_at > ?",
            token_hash(access_token), now_or(now),
        )
        if row is None:
            return None
        return TokenGrant(str(row[0]), row[1], row[2], float(row[3]), bool(row[4]))

    async def refresh(self, refresh_token: str, *, ttl: float, refresh_ttl: float,
                      client_id: str | None = None, device_id: str | None = None,
                      now: float | None = None) -> IssuedToken | None:
        if not _usable(refresh_token):
            return None
        at = now_or(now)
        # Optional conditions (the auth API passes the caller's client and device): a
        # refresh token presented by someone else is left untouched.
        where, args = "", list[str]()
        if client_id is not None:
            where, args = where + " AND client_id = ?", [*args, client_id]
        if device_id is not None:
            where, args = where + " AND device_id = ?", [*args, device_id]
        async with self._db.transaction() as tx:
            row = await tx.fetchrow(
                "UPDATE tokens SET revoked = TRUE WHERE refresh_hash = ? AND NOT revoked"
                f" AND refresh_expires_at > ?{where}"
                " RETURNING device_id, user_id, client_id, guest",
                token_hash(refresh_token), at, *args,
            )
            if row is None:
                return None
            return await self._insert(tx, str(row[0]), ttl=ttl, refresh_ttl=refresh_ttl,
                                      user_id=row[1], client_id=row[2], guest=bool(row[3]),
                                      now=at)

    async def live_among(self, access_hashes: Sequence[str], *,
                         now: float | None = None) -> set[str]:
        at = now_or(now)
        live: set[str] = set()
        for start in range(0, len(access_hashes), _LIVE_BATCH):
            batch = list(access_hashes[start:start + _LIVE_BATCH])
            marks = ", ".join("?" * len(batch))
            rows = await self._db.fetch(
                f"SELECT access_hash FROM tokens WHERE access_hash IN ({marks})"
                " AND NOT revoked AND expires_at > ?",
                *batch, at,
            )
            live.update(str(r[0]) for r in rows)
        return live

    async def revoke(self, token: str) -> bool:
        if not _usable(token):
            return False
        digest = token_hash(token)
        changed = await self._db.execute(
            "UPDATE tokens SET revoked = TRUE WHERE access_hash = ? OR refresh_hash = ?",
            digest, digest,
        )
        return changed > 0

    async def revoke_device(self, device_id: str) -> int:
        return await self._db.execute(
            "UPDATE tokens SET revoked = TRUE WHERE device_id = ? AND NOT revoked", device_id)

    async def purge_expired(self, *, now: float | None = None) -> int:
        at = now_or(now)
        # A pair is dead once its access token and its refresh token (if any) are.
        return await self._db.execute(
            "DELETE FROM tokens WHERE revoked OR (expires_at <= ?"
            " AND (refresh_expires_at IS NULL OR refresh_expires_at <= ?))",
            at, at,
        )
