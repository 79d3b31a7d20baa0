"""The state back end the suite runs on: ``OPENCIC_TEST_BACKEND=sqlite`` (default) or
``postgresql``.

Every server, CLI run and in-process store that is not about one back end in
particular asks :func:`database_for` for its ``database`` setting. On PostgreSQL that
is a database of its own per data dir, made on first use and written into the data
dir's ``opencic.toml`` (the product's own settings file): a restart of the server
with the same data dir, and every ``opencic … --data-dir D`` command, then use it
without being told, exactly as a deployment configured that way would. The databases
are dropped when the session ends (:func:`drop_databases`).

Tests that are about one back end (SQLite files and WAL, migrations of an SQLite
file) keep passing their own setting; tests parametrized over both back ends use
:data:`BACKENDS`.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from support import pg

VARIABLE = "OPENCIC_TEST_BACKEND"
CHOICES = ("sqlite", "postgresql")
BACKEND = os.environ.get(VARIABLE, "sqlite").strip().lower() or "sqlite"

# The tests parametrized over the back ends: both on the default pass (as before this
# variable existed); only PostgreSQL on the PostgreSQL pass, whose SQLite half would
# repeat the default pass exactly. PostgreSQL stays so each pass is complete alone.
BACKENDS = ["postgresql"] if BACKEND == "postgresql" else ["sqlite", "postgresql"]

CONFIG_NAME = "opencic.toml"

_created: list[str] = []  # DSNs of the databases this session made


def is_postgresql() -> bool:
    return BACKEND == "postgresql"


def check() -> str | None:
    """Why the suite cannot run on the chosen back end, or None if it can."""
    if BACKEND not in CHOICES:
        return f"{VARIABLE}={BACKEND!r}: expected one of {', '.join(CHOICES)}"
    if BACKEND == "postgresql":
        reason = pg.unreachable_reason()
        if reason is not None:
            return (f"{VARIABLE}=postgresql but {reason}; start it (.ci/run does when it is "
                    "installed) or point OPENCIC_TEST_POSTGRES at one")
    return None


def configured_database(data_dir: Path) -> str | None:
    """The ``database`` of ``data_dir``'s opencic.toml, if it has one."""
    config = data_dir / CONFIG_NAME
    if not config.is_file():
        return None
    with config.open("rb") as fh:
        value = tomllib.load(fh).get("database")
    return value if isinstance(value, str) else None


def database_for(data_dir: Path) -> str:
    """The ``database`` setting of a store in ``data_dir`` on the back end under test:
    "" (SQLite in the data dir), or the DSN of the PostgreSQL database of this data dir,
    made and written into its opencic.toml the first time it is asked for."""
    remembered = configured_database(data_dir)
    if remembered is not None:
        return remembered  # a restart, a CLI run, or a test that chose its own
    if BACKEND != "postgresql":
        return ""
    dsn = pg.create_database()
    _created.append(dsn)
    data_dir.mkdir(parents=True, exist_ok=True)
    # Appended: a test may have written settings of its own there. A JSON string is a
    # valid TOML basic string for the ASCII a DSN holds.
    with (data_dir / CONFIG_NAME).open("a") as fh:
        fh.write(f"\n# made by the test suite ({VARIABLE}=postgresql)\n"
                 f"database = {json.dumps(dsn)}\n")
    return dsn


def drop_databases() -> None:
    """Drops every database :func:`database_for` made (the end of the session)."""
    while _created:
        pg.drop_database(_created.pop())
