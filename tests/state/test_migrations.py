"""Versioned migrations on both back ends: fresh database, idempotent re-run, refusal of
a newer schema, all-or-nothing migrations, and the SQLite upgrade from version 1."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from opencic.cli.main import main
from opencic.config import load_settings
from opencic.server.runner import migrate
from opencic.state import SchemaVersionError
from opencic.state import postgres as pg_backend
from opencic.state import sqlite as sqlite_backend
from opencic.state.driver import Driver
from opencic.state.store import SqlStore, create_store, driver_for

TABLES = {"users", "clients", "devices", "tokens", "settings", "device_state", "pending_directives"}


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def known(database: str) -> int:
    backend = pg_backend if database.startswith("postgres") else sqlite_backend
    return len(backend.MIGRATIONS)


async def tables(store: SqlStore) -> set[str]:
    if store.backend == "sqlite":
        rows = await store.driver.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = await store.driver.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
    return {str(r[0]) for r in rows}


async def force_version(store: SqlStore, version: int) -> None:
    if store.backend == "sqlite":
        await store.driver.execute(f"PRAGMA user_version={version}")
    else:
        await store.driver.execute(
            "INSERT INTO schema_migrations(version, applied_at) VALUES (?, 0)", version)


def test_fresh_database_gets_every_migration_and_rerun_is_a_no_op(
        database: tuple[str, Path]) -> None:
    async def go() -> None:
        async with create_store(*database) as store:
            assert await store.schema_version() == known(database[0])
            assert TABLES <= await tables(store)
            await store.devices.ensure(["dev"])
            await store.settings.put("dev", {"k": "v"})
        async with create_store(*database) as store:  # second start: nothing to do
            assert await store.schema_version() == known(database[0])
            assert await store.settings.get("dev", "k") == "v"
            if store.backend == "postgresql":
                rows = await store.driver.fetch("SELECT version FROM schema_migrations ORDER BY version")
                assert [r[0] for r in rows] == list(range(1, known(database[0]) + 1))
    run(go())


def test_newer_schema_is_refused_with_a_clear_message(database: tuple[str, Path]) -> None:
    async def go() -> None:
        async with create_store(*database) as store:
            await force_version(store, 99)
        with pytest.raises(SchemaVersionError, match=r"schema version 99, newer than this "
                                                     r"OpenCIC knows .*upgrade OpenCIC"):
            await create_store(*database).open()
    run(go())
    # The same refusal stops `serve` before any worker starts, and the CLI, with a message.
    settings = load_settings(env={}, overrides={"data_dir": database[1], "database": database[0]})
    with pytest.raises(SystemExit, match="newer than this OpenCIC"):
        migrate(settings)


def _driver(database: tuple[str, Path], migrations: tuple[str, ...]) -> Driver:
    template = driver_for(*database)
    if isinstance(template, pg_backend.PostgresDriver):
        return pg_backend.PostgresDriver(template.dsn, migrations=migrations)
    assert isinstance(template, sqlite_backend.SQLiteDriver)
    return sqlite_backend.SQLiteDriver(template.path, migrations=migrations)


def test_a_failing_migration_changes_nothing(database: tuple[str, Path]) -> None:
    base = pg_backend.MIGRATIONS if database[0] else sqlite_backend.MIGRATIONS
    broken = (*base, "CREATE TABLE half_done (a INTEGER); SELECT no_such_function()")

    async def go() -> None:
        with pytest.raises(Exception, match="no_such_function"):
            await _driver(database, broken).connect()
        async with SqlStore(_driver(database, base)) as store:
            assert await store.schema_version() == len(base)
            assert "half_done" not in await tables(store)
    run(go())


def test_sqlite_version_1_tokens_survive_the_upgrade(tmp_path: Path) -> None:
    v1 = sqlite_backend.SQLiteDriver(tmp_path / "opencic.sqlite3",
                                     migrations=sqlite_backend.MIGRATIONS[:1])
    from opencic.state.hashing import token_hash

    async def go() -> None:
        await v1.connect()
        await v1.execute("INSERT INTO tokens(token_hash, device_id, created_at, expires_at)"
                         " VALUES (?, ?, ?, ?)", token_hash("old-token"), "old-dev", 0.0, 1e12)
        await v1.close()
        async with create_store("", tmp_path) as store:
            grant = await store.tokens.lookup("old-token")
            assert grant is not None and grant.device_id == "old-dev"
            assert await store.devices.get("old-dev") is not None
    run(go())
    # WAL mode persists in the file (other processes, the e2e fault test, rely on it).
    conn = sqlite3.connect(tmp_path / "opencic.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_token_cli_on_each_backend(database: tuple[str, Path], capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`opencic token create/revoke` work on both back ends (B-CN-04 dev tooling)."""
    for key in [k for k in os.environ if k.startswith("OPENCIC_")]:
        monkeypatch.delenv(key)
    db, data_dir = database
    where = ["--data-dir", str(data_dir), *(["--database", db] if db else [])]
    assert main(["token", "create", "--device-id", "cli-dev", "--expires-in", "60", *where]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]

    async def lookup() -> Any:
        async with create_store(db, data_dir) as store:
            return await store.tokens.lookup(token)

    grant = run(lookup())
    assert grant is not None and grant.device_id == "cli-dev"
    assert main(["token", "revoke", token, *where]) == 0
    assert run(lookup()) is None
    assert main(["token", "revoke", "not-a-token", *where]) == 1
    assert "no such token" in capsys.readouterr().err
    # "-": the token from standard input, out of ps and the shell history.
    assert main(["token", "create", "--device-id", "cli-dev", *where]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
    assert main(["token", "revoke", "-", *where]) == 0
    assert run(lookup()) is None
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["token", "revoke", "-", *where]) == 2
    assert "no token on standard input" in capsys.readouterr().err


def test_unreachable_postgres_is_a_clear_cli_error(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    dsn = "postgresql://postgres:hunter2@127.0.0.1:1/none"
    assert main(["token", "create", "--device-id", "d", "--data-dir", str(tmp_path),
                 "--database", dsn]) == 1
    err = capsys.readouterr().err
    assert "cannot connect to PostgreSQL" in err and "hunter2" not in err


def test_database_setting_is_checked() -> None:
    from opencic.config import ConfigError

    with pytest.raises(ConfigError, match="'database'"):
        load_settings(env={"OPENCIC_DATABASE": "mysql://secret@x/y"})
    assert load_settings(env={"OPENCIC_DATABASE": "postgresql://u@h/d"}).database.startswith("postgresql")

