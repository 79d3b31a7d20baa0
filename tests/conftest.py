"""Shared fixtures: a real OpenCIC server process on an ephemeral loopback port, and
the two state back ends (SQLite in a temporary data dir, PostgreSQL in a database made
for this session).

``OPENCIC_TEST_BACKEND=postgresql`` runs everything that is not about one back end on
PostgreSQL (support/backend.py); the default is SQLite."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Test helpers live in tests/support (imported as ``support.*``).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import backend, pg
from support.backend import BACKENDS
from support.server import ServerHandle, serving

# The suite's own variables are not settings, and OpenCIC refuses unknown OPENCIC_*
# names: servers, CLI runs and load_settings() in this process must not see them.
# support.pg and support.backend have read them (at import, above).
for _name in ("OPENCIC_TEST_BACKEND", "OPENCIC_TEST_POSTGRES"):
    os.environ.pop(_name, None)


def pytest_sessionstart(session: pytest.Session) -> None:
    # Asked for PostgreSQL and it is not there: stop before the first test, loudly
    # (a skip or hundreds of identical errors would hide what is wrong).
    problem = backend.check()
    if problem is not None:
        raise pytest.UsageError(problem)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # After every fixture's teardown: the servers using these databases have stopped.
    backend.drop_databases()


def pytest_report_header(config: pytest.Config) -> str:
    where = f" ({pg.ADMIN_DSN})" if backend.is_postgresql() else ""
    return f"opencic state back end: {backend.BACKEND}{where}"


@pytest.fixture(scope="session")
def cic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """One real server (granian, h2c) shared by the end-to-end tests of a session."""
    with serving(tmp_path_factory.mktemp("cic-server")) as handle:
        yield handle


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A database created for this session and dropped after it.

    Without PostgreSQL the tests that need it are skipped, except in CI (CI=true) or
    on the PostgreSQL pass, where a missing database must not turn into a green run
    that tested nothing."""
    reason = pg.unreachable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true" or backend.is_postgresql():
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
    # The auth rate limits count per client address, and every test comes from
    # 127.0.0.1: lifted here, tested on servers of their own (tests/e2e/test_security.py).
    env: dict[str, str] = {"OPENCIC_TOKEN_CACHE_SECONDS": str(TOKEN_CACHE_SECONDS),
                           "OPENCIC_AUTH_TOKEN_MAX_REQUESTS": "100000"}
    if request.param == "postgresql":
        env["OPENCIC_DATABASE"] = pg.fresh_schema(request.getfixturevalue("postgres_dsn"))
    with serving(tmp_path_factory.mktemp(f"cic-{request.param}"), env=env) as handle:
        yield handle
