"""The small SQL surface the repositories need, implemented once per back end.

The repositories (``repositories.py``, ``tokens.py``) are written once, in the SQL both
SQLite (3.35+) and PostgreSQL understand — ``?`` placeholders, ``ON CONFLICT … DO
UPDATE``, ``RETURNING``, ``TRUE``/``FALSE`` — so the two back ends cannot drift apart in
behaviour. What differs (connections, threads, placeholders, error classes, schema
migrations) lives in each driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

Row = Sequence[Any]


class Executor(Protocol):
    """Runs statements; outside a transaction each call commits on its own."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Runs one statement; returns the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...


class Driver(Executor, Protocol):
    backend: str

    async def connect(self) -> None:
        """Opens the connection(s) and applies pending migrations."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Executor]:
        """All statements on the yielded executor commit together or not at all."""
        ...

    async def schema_version(self) -> int: ...

    async def close(self) -> None: ...


def newer_schema_message(where: str, found: int, known: int) -> str:
    return (
        f"{where} has schema version {found}, newer than this OpenCIC knows ({known}); "
        "upgrade OpenCIC instead of downgrading the data"
    )
