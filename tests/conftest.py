"""Shared fixtures: a real OpenCIC server process on an ephemeral loopback port, and
the two state back ends (SQLite in a temporary data dir, PostgreSQL in a database made
for this session)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Test helpers live in tests/support (imported as ``support.*``).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import pg
from support.server import ServerHandle, start_server, stop_server

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def cic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """One real server (granian, h2c) shared by the end-to-end tests of a session."""
    handle = start_server(tmp_path_factory.mktemp("cic-server"))
    try:
        yield handle
    finally:
        stop_server(handle)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A database created for this session and dropped after it.

    Without PostgreSQL the tests that need it are skipped, except in CI (CI=true),
    where a missing database must not turn into a green run that tested nothing."""
    reason = pg.unreachable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI needs it (.ci/run starts it when it is installed)",
                        pytrace=False)
        pytest.skip(f"{reason}; set OPENCIC_TEST_POSTGRES or start PostgreSQL to run these")
    dsn = pg.create_database()
    try:
        yield dsn
    finally:
        pg.drop_database(dsn)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """``(database setting, data dir)`` of an empty store on each back end."""
    if request.param == "sqlite":
        return "", tmp_path
    dsn = request.getfixturevalue("postgres_dsn")
    return pg.fresh_schema(dsn), tmp_path


TOKEN_CACHE_SECONDS = 1.0


@pytest.fixture(scope="session", params=BACKENDS)
def backend_server(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """A real server per back end (SQLite data dir, or PostgreSQL via OPENCIC_DATABASE)."""
    # A short token cache, so the tests of revocation made from outside see its bound.
    env: dict[str, str] = {"OPENCIC_TOKEN_CACHE_SECONDS": str(TOKEN_CACHE_SECONDS)}
    if request.param == "postgresql":
        env["OPENCIC_DATABASE"] = pg.fresh_schema(request.getfixturevalue("postgres_dsn"))
    handle = start_server(tmp_path_factory.mktemp(f"cic-{request.param}"), env=env)
    try:
        yield handle
    finally:
        stop_server(handle)
