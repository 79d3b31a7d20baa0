"""Bearer tokens for devices (B-CN-03/04). Only a SHA-256 of each token is stored."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from .sqlite import Database

MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True, slots=True)
class TokenGrant:
    device_id: str
    expires_at: float


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_device_id(device_id: str) -> bool:
    return 0 < len(device_id) <= 128 and device_id.isprintable() and device_id.strip() == device_id


class TokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, device_id: str, ttl_seconds: float, *, now: float | None = None) -> str:
        if not valid_device_id(device_id):
            raise ValueError("device id must be 1-128 printable characters without surrounding spaces")
        token = secrets.token_urlsafe(32)
        created = time.time() if now is None else now
        with self._db.lock:
            self._db.connection.execute(
                "INSERT INTO tokens(token_hash, device_id, created_at, expires_at) VALUES (?,?,?,?)",
                (_hash(token), device_id, created, created + ttl_seconds),
            )
        return token

    def lookup(self, token: str, *, now: float | None = None) -> TokenGrant | None:
        """The grant for a live token, or None if unknown, revoked or expired."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        with self._db.lock:
            row = self._db.connection.execute(
                "SELECT device_id, expires_at, revoked FROM tokens WHERE token_hash = ?",
                (_hash(token),),
            ).fetchone()
        if row is None or row[2]:
            return None
        if row[1] <= (time.time() if now is None else now):
            return None
        return TokenGrant(row[0], row[1])

    def revoke(self, token: str) -> bool:
        with self._db.lock:
            cur = self._db.connection.execute(
                "UPDATE tokens SET revoked = 1 WHERE token_hash = ?", (_hash(token),)
            )
        return cur.rowcount > 0
