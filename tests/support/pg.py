"""A throw-away PostgreSQL database per test session, and fresh schemas inside it.

The server at ``OPENCIC_TEST_POSTGRES`` (default: the local one, trust auth, user
postgres, database ``test``) is only used to create and drop our own database, so
nothing of a test run is left behind and runs never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
import uuid

import asyncpg

ADMIN_DSN = os.environ.get("OPENCIC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def unreachable_reason() -> str | None:
    """None if PostgreSQL answers at ADMIN_DSN, else why not."""
    async def probe() -> None:
        conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
        await conn.close()

    try:
        _run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at {ADMIN_DSN} is unreachable ({type(exc).__name__}: {exc})"
    return None


def _with_database(dsn: str, database: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit(parts._replace(path="/" + database, query=""))


def create_database() -> str:
    """Creates ``opencic_test_<random>``; returns its DSN."""
    name = f"opencic_test_{uuid.uuid4().hex[:12]}"

    async def go() -> None:
        conn = await asyncpg.connect(ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    _run(go())
    return _with_database(ADMIN_DSN, name)


def drop_database(dsn: str) -> None:
    name = urllib.parse.urlsplit(dsn).path.lstrip("/")

    async def go() -> None:
        conn = await asyncpg.connect(ADMIN_DSN)
        try:
            # FORCE: a server or writer killed by a test may still hold a session.
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    _run(go())


def fresh_schema(dsn: str) -> str:
    """A new empty schema in ``dsn``'s database; the DSN that works inside it."""
    schema = f"s_{uuid.uuid4().hex[:12]}"

    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'CREATE SCHEMA "{schema}"')
        finally:
            await conn.close()

    _run(go())
    return f"{dsn}?search_path={schema}"
