"""``Alerts.SetAlert.scheduledTime`` on the wire, for both ends (interfaces.yaml).

Documented as ``YYYY-MM-DDThh:mm:ssZ``; the examples also show offsets. The server
writes UTC with ``Z``; a value without any zone is read in ``naive_zone`` (the server
says UTC, a device its own local time).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any


def wire_time(when: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ssZ`` in UTC."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_wire_time(value: Any, naive_zone: tzinfo | None = UTC) -> datetime | None:
    """The moment ``value`` names, or None if it is not an ISO 8601 date-time.
    ``naive_zone=None``: a value without a zone is in this machine's local time."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        return parsed
    return parsed.astimezone() if naive_zone is None else parsed.replace(tzinfo=naive_zone)
