"""The assistant tests' fixed clock (import from here, never from a conftest)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

# Server local zone of the fixed clock: UTC+1, so tests never depend on the host's TZ.
SERVER_ZONE = timezone(timedelta(hours=1))
# 2026-11-23 23:42 at the server is 22:42 UTC.
FIXED_NOW = datetime(2026, 11, 23, 23, 42, 5, tzinfo=SERVER_ZONE)


def fixed_clock() -> datetime:
    return FIXED_NOW
