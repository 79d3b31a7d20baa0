"""What the auth API keeps (auth.md): users' account tokens, authorization codes and
the terms agreement. Same SQL on both back ends (see ``driver.py``).

An *account token* stands in for the upstream portal's account access token
(``Authorization: Bearer …`` on ``/authorize``); an *authorization code* is what
``/authorize`` hands out and ``/token`` exchanges, once. Both are random and stored as
SHA-256 hashes only (see ``hashing.py``).
"""

from __future__ import annotations

from .base import AuthCode, User
from .driver import Driver
from .hashing import MAX_TOKEN_LENGTH, new_token, token_hash
from .repositories import now_or


def _usable(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH


class SqlAccountTokens:
    def __init__(self, db: Driver) -> None:
        self._db = db

    async def issue(self, user_id: str, *, now: float | None = None) -> str:
        """A new account token for the user (the plain token exists only here)."""
        token = new_token()
        await self._db.execute(
            "INSERT INTO account_tokens(token_hash, user_id, created_at) VALUES (?, ?, ?)",
            token_hash(token), user_id, now_or(now),
        )
        return token

    async def lookup(self, token: str) -> User | None:
        if not _usable(token):
            return None
        row = await self._db.fetchrow(
            "SELECT u.user_id, u.name, u.created_at FROM account_tokens a"
            " JOIN users u ON u.user_id = a.user_id WHERE a.token_hash = ?",
            token_hash(token),
        )
        return None if row is None else User(str(row[0]), str(row[1]), float(row[2]))

    async def revoke_user(self, user_id: str) -> int:
        return await self._db.execute("DELETE FROM account_tokens WHERE user_id = ?", user_id)

    async def terms_agreed(self, user_id: str) -> bool:
        row = await self._db.fetchrow(
            "SELECT terms_agreed_at FROM users WHERE user_id = ?", user_id)
        return row is not None and row[0] is not None

    async def agree_terms(self, user_id: str, *, now: float | None = None) -> bool:
        return await self._db.execute(
            "UPDATE users SET terms_agreed_at = ? WHERE user_id = ?", now_or(now), user_id) > 0


class SqlAuthCodes:
    def __init__(self, db: Driver) -> None:
        self._db = db

    async def issue(self, *, client_id: str, user_id: str | None, device_id: str, model_id: str,
                    ttl: float, guest: bool = False, terms_pending: bool = False,
                    now: float | None = None) -> str:
        if ttl <= 0:
            raise ValueError("a code lifetime must be positive")
        at = now_or(now)
        code = new_token()
        async with self._db.transaction() as tx:
            # Housekeeping on the way: codes live minutes, so the table stays small.
            await tx.execute("DELETE FROM auth_codes WHERE expires_at <= ?", at)
            await tx.execute(
                "INSERT INTO auth_codes(code_hash, client_id, user_id, device_id, model_id,"
                " guest, terms_pending, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                token_hash(code), client_id, user_id, device_id, model_id, guest, terms_pending,
                at, at + ttl,
            )
        return code

    async def claim(self, code: str, *, client_id: str, device_id: str, model_id: str,
                    now: float | None = None) -> AuthCode | None:
        """Single use: deletes and returns a live code issued for exactly this client,
        device and model; None otherwise (unknown, used, expired, terms still pending,
        or issued for someone else, which is left as it is)."""
        if not _usable(code):
            return None
        row = await self._db.fetchrow(
            "DELETE FROM auth_codes WHERE code_hash = ? AND client_id = ? AND device_id = ?"
            " AND model_id = ? AND NOT terms_pending AND expires_at > ?"
            " RETURNING client_id, user_id, device_id, model_id, guest, expires_at",
            token_hash(code), client_id, device_id, model_id, now_or(now),
        )
        if row is None:
            return None
        return AuthCode(str(row[0]), row[1], str(row[2]), str(row[3]), bool(row[4]), float(row[5]))

    async def pending_user(self, code: str, *, now: float | None = None) -> str | None:
        """The user a live code waiting for the terms agreement belongs to."""
        if not _usable(code):
            return None
        row = await self._db.fetchrow(
            "SELECT user_id FROM auth_codes WHERE code_hash = ? AND terms_pending"
            " AND expires_at > ?", token_hash(code), now_or(now))
        return None if row is None or row[0] is None else str(row[0])

    async def release(self, code: str, *, now: float | None = None) -> bool:
        """The terms were agreed: the pending code becomes exchangeable."""
        if not _usable(code):
            return False
        return await self._db.execute(
            "UPDATE auth_codes SET terms_pending = FALSE WHERE code_hash = ? AND terms_pending"
            " AND expires_at > ?", token_hash(code), now_or(now)) > 0

    async def discard(self, code: str) -> bool:
        if not _usable(code):
            return False
        return await self._db.execute(
            "DELETE FROM auth_codes WHERE code_hash = ?", token_hash(code)) > 0

    async def purge_expired(self, *, now: float | None = None) -> int:
        return await self._db.execute(
            "DELETE FROM auth_codes WHERE expires_at <= ?", now_or(now))
