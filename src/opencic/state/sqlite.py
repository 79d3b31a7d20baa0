"""The embedded back end: one SQLite file in the data dir, in WAL mode.

Why a dedicated thread and not aiosqlite: aiosqlite also runs one connection on one
thread, but its API is statement by statement, so two coroutines sharing a connection
can interleave their statements inside each other's transaction. Here every call goes
through one FIFO thread *and* an asyncio lock that a transaction holds from BEGIN to
COMMIT, which gives the repositories real transactions at no dependency cost. Token
lookups take microseconds, so one thread is plenty for one server process; the event
loop only ever awaits the thread.

Migrations are numbered, applied in order at start-up, each in its own ``BEGIN
IMMEDIATE`` transaction (which also serialises processes starting at the same time),
and the version is recorded in ``PRAGMA user_version`` inside that transaction.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from .base import AlreadyExists, MissingReference, SchemaVersionError
from .driver import Executor, Row, newer_schema_message

T = TypeVar("T")

DB_FILENAME = "opencic.sqlite3"

MIGRATIONS: tuple[str, ...] = (
    # 1: bearer tokens for `opencic token create` (kept as shipped: data dirs exist).
    """
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        device_id  TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        revoked    INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tokens_device ON tokens(device_id);
    """,
    # 2: accounts, products, devices, refresh tokens and per-device state. Version-1
    # tokens stay valid: their devices are created (unowned) and the rows copied.
    """
    CREATE TABLE users (
        user_id       TEXT PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        password_hash TEXT,
        created_at    REAL NOT NULL
    );
    CREATE TABLE clients (
        client_id   TEXT PRIMARY KEY,
        name        TEXT NOT NULL DEFAULT '',
        secret_hash TEXT NOT NULL,
        created_at  REAL NOT NULL
    );
    CREATE TABLE devices (
        device_id  TEXT PRIMARY KEY,
        user_id    TEXT REFERENCES users(user_id) ON DELETE CASCADE,
        client_id  TEXT REFERENCES clients(client_id) ON DELETE SET NULL,
        model_id   TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX devices_user ON devices(user_id);
    INSERT INTO devices(device_id, created_at)
        SELECT device_id, min(created_at) FROM tokens GROUP BY device_id;
    ALTER TABLE tokens RENAME TO tokens_v1;
    CREATE TABLE tokens (
        access_hash        TEXT PRIMARY KEY,
        refresh_hash       TEXT UNIQUE,
        device_id          TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
        user_id            TEXT REFERENCES users(user_id) ON DELETE CASCADE,
        client_id          TEXT REFERENCES clients(client_id) ON DELETE CASCADE,
        created_at         REAL NOT NULL,
        expires_at         REAL NOT NULL,
        refresh_expires_at REAL,
        revoked            INTEGER NOT NULL DEFAULT 0,
        guest              INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO tokens(access_hash, device_id, created_at, expires_at, revoked)
        SELECT token_hash, device_id, created_at, expires_at, revoked FROM tokens_v1;
    DROP TABLE tokens_v1;
    CREATE INDEX tokens_device ON tokens(device_id);
    CREATE INDEX tokens_user ON tokens(user_id);
    CREATE TABLE settings (
        device_id  TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (device_id, key)
    );
    CREATE TABLE device_state (
        device_id  TEXT PRIMARY KEY REFERENCES devices(device_id) ON DELETE CASCADE,
        context    TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE pending_directives (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id  TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
        directive  TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL
    );
    CREATE INDEX pending_device ON pending_directives(device_id, seq);
    """,
    # 3: the auth API: users' account tokens, authorization codes, terms agreement.
    """
    ALTER TABLE users ADD COLUMN terms_agreed_at REAL;
    CREATE TABLE account_tokens (
        token_hash TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        created_at REAL NOT NULL
    );
    CREATE INDEX account_tokens_user ON account_tokens(user_id);
    CREATE TABLE auth_codes (
        code_hash     TEXT PRIMARY KEY,
        client_id     TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
        user_id       TEXT REFERENCES users(user_id) ON DELETE CASCADE,
        device_id     TEXT NOT NULL,
        model_id      TEXT NOT NULL,
        guest         INTEGER NOT NULL DEFAULT 0,
        terms_pending INTEGER NOT NULL DEFAULT 0,
        created_at    REAL NOT NULL,
        expires_at    REAL NOT NULL
    );
    CREATE INDEX auth_codes_expiry ON auth_codes(expires_at);
    """,
    # 4: alerts (Alerts.SetAlert payloads as sent, per device, with their state).
    """
    CREATE TABLE alerts (
        device_id    TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
        token        TEXT NOT NULL,
        type         TEXT NOT NULL,
        scheduled_at REAL NOT NULL,
        payload      TEXT NOT NULL,
        status       TEXT NOT NULL,
        dialog_request_id TEXT,
        created_at   REAL NOT NULL,
        updated_at   REAL NOT NULL,
        PRIMARY KEY (device_id, token)
    );
    CREATE INDEX alerts_schedule ON alerts(scheduled_at);
    """,
    # 5: repeating alarms: the weekdays an alert comes back on (B-AL-09/10).
    """
    ALTER TABLE alerts ADD COLUMN repeat_days TEXT;
    """,
)


def _translate(exc: sqlite3.IntegrityError) -> Exception:
    text = str(exc)
    if "FOREIGN KEY" in text:
        return MissingReference(text)
    if "UNIQUE" in text or "PRIMARY KEY" in text:
        return AlreadyExists(text)
    return exc


class SQLiteDriver:
    backend = "sqlite"

    def __init__(self, path: Path, *, migrations: Sequence[str] = MIGRATIONS) -> None:
        self.path = path
        self.migrations = tuple(migrations)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        # Held by a transaction from BEGIN to COMMIT and by every single statement, so
        # nothing runs inside someone else's transaction on the shared connection.
        self._lock = asyncio.Lock()

    # ---------------------------------------------------------------- thread plumbing

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("the SQLite store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the SQLite store is not open")
        return self._conn

    def _run(self, sql: str, args: Sequence[Any], fetch: bool) -> Any:
        try:
            cur = self._connection().execute(sql, tuple(args))
            return cur.fetchall() if fetch else cur.rowcount
        except sqlite3.IntegrityError as exc:
            raise _translate(exc) from exc

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._connection().executemany(sql, [tuple(r) for r in rows])
        except sqlite3.IntegrityError as exc:
            raise _translate(exc) from exc

    # ---------------------------------------------------------------- lifecycle

    async def connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="opencic-sqlite")
        try:
            await self._call(self._open_sync)
            await self._call(self._migrate_sync)
        except BaseException:
            await self.close()
            raise

    def _open_sync(self) -> None:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (autocommit otherwise).
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=5000")  # the CLI may write while we serve
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before we acknowledge it, even across a power cut
        # (NORMAL in WAL mode survives a process crash but may lose the last commits
        # when the machine dies).
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        self._conn = conn

    def _migrate_sync(self) -> None:
        conn = self._connection()
        known = len(self.migrations)
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > known:
            raise SchemaVersionError(newer_schema_message(str(self.path), version, known))
        for number, script in enumerate(self.migrations[version:], start=version + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-read under the write lock: another process may have migrated.
                if int(conn.execute("PRAGMA user_version").fetchone()[0]) >= number:
                    conn.execute("ROLLBACK")
                    continue
                # executescript() would COMMIT first; run statement by statement instead.
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    async def schema_version(self) -> int:
        rows = await self.fetch("PRAGMA user_version")
        return int(rows[0][0])

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._call(conn.close)
        executor, self._executor = self._executor, None
        executor.shutdown(wait=True)

    # ---------------------------------------------------------------- Executor

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._lock:
            return int(await self._call(self._run, sql, args, False))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._lock:
            return list(await self._call(self._run, sql, args, True))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self._lock:
            conn = self._connection()
            # IMMEDIATE takes the write lock now, so a read-then-write transaction
            # cannot fail half-way with SQLITE_BUSY when another process writes.
            await self._call(conn.execute, "BEGIN IMMEDIATE")
            try:
                yield _Transaction(self)
            except BaseException:
                # Shielded: even if we are being cancelled, the thread runs the
                # ROLLBACK before anything queued after it (the executor is FIFO).
                await asyncio.shield(self._call(conn.execute, "ROLLBACK"))
                raise
            try:
                await self._call(conn.execute, "COMMIT")
            except BaseException:
                if conn.in_transaction:
                    await asyncio.shield(self._call(conn.execute, "ROLLBACK"))
                raise


class _Transaction:
    """The statements of one transaction (the driver's lock is already held)."""

    def __init__(self, driver: SQLiteDriver) -> None:
        self._d = driver

    async def execute(self, sql: str, *args: Any) -> int:
        return int(await self._d._call(self._d._run, sql, args, False))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._d._call(self._d._run_many, sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._d._call(self._d._run, sql, args, True))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None
