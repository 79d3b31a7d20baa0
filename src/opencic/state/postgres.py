"""The PostgreSQL back end (``database = "postgresql://…"``), on asyncpg.

asyncpg is natively asyncio (no threads) and the fastest driver; a small pool serves a
server process. Tables live in the connection's current schema, so a DSN with
``?search_path=name`` keeps an installation (or a test run) in its own schema.

Migrations are numbered; each runs in its own transaction and is recorded in
``schema_migrations``. A session advisory lock makes processes that start together
take turns, so exactly one applies each migration.
"""

from __future__ import annotations

import functools
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from .base import AlreadyExists, MissingReference, SchemaVersionError
from .driver import Executor, Row, newer_schema_message

# Arbitrary but fixed: the advisory lock key all OpenCIC processes agree on.
MIGRATION_LOCK_KEY = 0x0C1C_5747

# Times are DOUBLE PRECISION POSIX seconds, like SQLite's REAL, so both back ends run
# the same SQL; JSON columns are JSONB (asyncpg passes them as text by default).
MIGRATIONS: tuple[str, ...] = (
    # 1: the schema SQLite reaches with its migrations 1-2.
    """
    CREATE TABLE users (
        user_id       TEXT PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        password_hash TEXT,
        created_at    DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE clients (
        client_id   TEXT PRIMARY KEY,
        name        TEXT NOT NULL DEFAULT '',
        secret_hash TEXT NOT NULL,
        created_at  DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE devices (
        device_id  TEXT PRIMARY KEY,
        user_id    TEXT REFERENCES users(user_id) ON DELETE CASCADE,
        client_id  TEXT REFERENCES clients(client_id) ON DELETE SET NULL,
        model_id   TEXT,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX devices_user ON devices(user_id);
    CREATE TABLE tokens (
        access_hash        TEXT PRIMARY KEY,
        refresh_hash       TEXT UNIQUE,
        device_id          TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
        user_id            TEXT REFERENCES users(user_id) ON DELETE CASCADE,
        client_id          TEXT REFERENCES clients(client_id) ON DELETE CASCADE,
        created_at         DOUBLE PRECISION NOT NULL,
        expires_at         DOUBLE PRECISION NOT NULL,
        refresh_expires_at DOUBLE PRECISION,
        revoked            BOOLEAN NOT NULL DEFAULT FALSE,
        guest              BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX tokens_device ON tokens(device_id);
    CREATE INDEX tokens_user ON tokens(user_id);
    CREATE TABLE settings (
        device_id  TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (device_id, key)
    );
    CREATE TABLE device_state (
        device_id  TEXT PRIMARY KEY REFERENCES devices(device_id) ON DELETE CASCADE,
        context    JSONB NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE pending_directives (
        seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        device_id  TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
        directive  JSONB NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION
    );
    CREATE INDEX pending_device ON pending_directives(device_id, seq);
    """,
    # 2: the auth API (SQLite migration 3): users' account tokens, authorization codes, terms agreement.
    """
    ALTER TABLE users ADD COLUMN terms_agreed_at DOUBLE PRECISION;
    CREATE TABLE account_tokens (
        token_hash TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX account_tokens_user ON account_tokens(user_id);
    CREATE TABLE auth_codes (
        code_hash     TEXT PRIMARY KEY,
        client_id     TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
        user_id       TEXT REFERENCES users(user_id) ON DELETE CASCADE,
        device_id     TEXT NOT NULL,
        model_id      TEXT NOT NULL,
        guest         BOOLEAN NOT NULL DEFAULT FALSE,
        terms_pending BOOLEAN NOT NULL DEFAULT FALSE,
        created_at    DOUBLE PRECISION NOT NULL,
        expires_at    DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX auth_codes_expiry ON auth_codes(expires_at);
    """,
    # 3: alerts (SQLite migration 4).
    """
    CREATE TABLE alerts (
        device_id    TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
        token        TEXT NOT NULL,
        type         TEXT NOT NULL,
        scheduled_at DOUBLE PRECISION NOT NULL,
        payload      JSONB NOT NULL,
        status       TEXT NOT NULL,
        dialog_request_id TEXT,
        created_at   DOUBLE PRECISION NOT NULL,
        updated_at   DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (device_id, token)
    );
    CREATE INDEX alerts_schedule ON alerts(scheduled_at);
    """,
    # 4: repeating alarms (SQLite migration 5).
    """
    ALTER TABLE alerts ADD COLUMN repeat_days TEXT;
    """,
)


@functools.lru_cache(maxsize=512)
def _numbered(sql: str) -> str:
    """``?`` placeholders (the repositories' dialect) to asyncpg's ``$1, $2, …``."""
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


def _rowcount(status: str) -> int:
    # asyncpg returns the command tag, e.g. "UPDATE 3" or "INSERT 0 1".
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _translate(exc: asyncpg.IntegrityConstraintViolationError) -> Exception:
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return MissingReference(str(exc))
    if isinstance(exc, asyncpg.UniqueViolationError):
        return AlreadyExists(str(exc))
    return exc


# Query parameters of a libpq/asyncpg DSN that hold secrets (a password can be given
# as ?password=… as well as in the user-info part).
_SECRET_PARAMS = frozenset({"password", "sslpassword"})


def redact(dsn: str) -> str:
    """The DSN without its passwords, for logs and error messages."""
    parts = urllib.parse.urlsplit(dsn)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    fields = parts.query.split("&") if parts.query else []
    for i, field in enumerate(fields):
        name = field.split("=", 1)[0]
        if urllib.parse.unquote_plus(name).lower() in _SECRET_PARAMS:
            fields[i] = f"{name}=***"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query="&".join(fields)))


class _Conn:
    """Executor over one asyncpg connection or the pool (same method names)."""

    def __init__(self, target: Any) -> None:
        self._t = target

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            return _rowcount(await self._t.execute(_numbered(sql), *args))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _translate(exc) from exc

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await self._t.executemany(_numbered(sql), [tuple(r) for r in rows])
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _translate(exc) from exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            return list(await self._t.fetch(_numbered(sql), *args))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _translate(exc) from exc

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None


class PostgresDriver(_Conn):
    backend = "postgresql"

    def __init__(self, dsn: str, *, migrations: Sequence[str] = MIGRATIONS,
                 min_size: int = 1, max_size: int = 10) -> None:
        super().__init__(None)
        self.dsn = dsn
        self.migrations = tuple(migrations)
        self._min, self._max = min_size, max_size
        self._pool: asyncpg.Pool | None = None

    async def connect(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self.dsn, min_size=self._min, max_size=self._max)
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConnectionError(f"cannot connect to PostgreSQL at {redact(self.dsn)}: {exc}") from exc
        self._t = self._pool
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def _migrate(self) -> None:
        assert self._pool is not None
        known = len(self.migrations)
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
                )
                version = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
                if version > known:
                    where = f"PostgreSQL database {redact(self.dsn)}"
                    raise SchemaVersionError(newer_schema_message(where, version, known))
                for number, script in enumerate(self.migrations[version:], start=version + 1):
                    async with conn.transaction():
                        await conn.execute(script)  # no arguments: several statements allowed
                        await conn.execute(
                            "INSERT INTO schema_migrations(version, applied_at) VALUES ($1, $2)",
                            number, time.time(),
                        )
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)

    async def schema_version(self) -> int:
        row = await self.fetchrow("SELECT coalesce(max(version), 0) FROM schema_migrations")
        return int(row[0]) if row else 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        if self._pool is None:
            raise RuntimeError("the PostgreSQL store is not open")
        async with self._pool.acquire() as conn, conn.transaction():
            yield _Conn(conn)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            self._t = None
            await pool.close()
