"""Choosing and opening the back end from the ``database`` setting.

``""`` (the default) is SQLite in the data dir; ``sqlite:///path`` is SQLite
elsewhere; ``postgresql://…`` (or ``postgres://…``) is PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from .accounts import SqlAccountTokens, SqlAuthCodes
from .alerts import SqlAlerts
from .driver import Driver
from .repositories import (
    SqlClients,
    SqlDevices,
    SqlDeviceState,
    SqlPendingDirectives,
    SqlSettings,
    SqlUsers,
)
from .sqlite import DB_FILENAME, SQLiteDriver
from .tokens import SqlTokens

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"


def database_error(database: str) -> str | None:
    """Why ``database`` is not a setting we can use, or None if it is."""
    if database == "" or database.startswith(POSTGRES_SCHEMES):
        return None
    if database.startswith(SQLITE_SCHEME) and len(database) > len(SQLITE_SCHEME):
        return None
    return "expected empty (SQLite in the data dir), sqlite:///PATH or postgresql://…"


def describe(database: str, data_dir: Path) -> str:
    """Where the data lives, safe to log (no password)."""
    if database.startswith(POSTGRES_SCHEMES):
        from .postgres import redact

        return redact(database)
    return str(_sqlite_path(database, data_dir))


def _sqlite_path(database: str, data_dir: Path) -> Path:
    if database.startswith(SQLITE_SCHEME):
        return Path("/" + database[len(SQLITE_SCHEME):].lstrip("/"))
    return data_dir / DB_FILENAME


def driver_for(database: str, data_dir: Path) -> Driver:
    problem = database_error(database)
    if problem is not None:
        raise ValueError(f"database setting: {problem}")
    if database.startswith(POSTGRES_SCHEMES):
        # Imported here so an SQLite-only installation never loads asyncpg.
        from .postgres import PostgresDriver

        return PostgresDriver(database)
    return SQLiteDriver(_sqlite_path(database, data_dir))


class SqlStore:
    """The :class:`~opencic.state.base.Store` both back ends share (see driver.py)."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.backend = driver.backend
        self.users = SqlUsers(driver)
        self.clients = SqlClients(driver)
        self.devices = SqlDevices(driver)
        self.tokens = SqlTokens(driver)
        self.account_tokens = SqlAccountTokens(driver)
        self.auth_codes = SqlAuthCodes(driver)
        self.settings = SqlSettings(driver)
        self.device_state = SqlDeviceState(driver)
        self.pending = SqlPendingDirectives(driver)
        self.alerts = SqlAlerts(driver)

    async def open(self) -> None:
        await self.driver.connect()

    async def close(self) -> None:
        await self.driver.close()

    async def schema_version(self) -> int:
        return await self.driver.schema_version()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def create_store(database: str, data_dir: Path) -> SqlStore:
    """The store for a ``database`` setting, not yet opened (no I/O here)."""
    return SqlStore(driver_for(database, data_dir))


async def open_store(database: str, data_dir: Path) -> SqlStore:
    """Connects and migrates; the caller closes it (or uses ``async with create_store(…)``)."""
    store = create_store(database, data_dir)
    await store.open()
    return store
