"""Shared fixtures: a real OpenCIC server process on an ephemeral loopback port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Test helpers live in tests/support (imported as ``support.*``).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.server import ServerHandle, start_server, stop_server


@pytest.fixture(scope="session")
def cic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """One real server (granian, h2c) shared by the end-to-end tests of a session."""
    handle = start_server(tmp_path_factory.mktemp("cic-server"))
    try:
        yield handle
    finally:
        stop_server(handle)
