"""The embedded SQLite database in the data dir, with numbered migrations.

Migrations are applied in order and recorded in ``PRAGMA user_version``; each runs in
one transaction, so a failed migration leaves the previous schema intact.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

DB_FILENAME = "opencic.sqlite3"

MIGRATIONS: tuple[str, ...] = (
    # 1: bearer tokens (the full auth API and accounts come with their own migrations).
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
)


class Database:
    """One connection per process, serialised by a lock (calls take microseconds)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self.lock = threading.Lock()
        self._migrate()

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> Database:
        return cls(data_dir / DB_FILENAME)

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    def _migrate(self) -> None:
        with self.lock:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this OpenCIC "
                    f"({len(MIGRATIONS)}); upgrade OpenCIC instead of downgrading the data"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in filter(str.strip, script.split(";")):
                        self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version={number}")
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise

    def close(self) -> None:
        with self.lock:
            self._conn.close()
