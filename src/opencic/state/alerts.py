"""Alerts (alarms, timers, reminders): the SetAlert payloads a device was sent, per device.

Status follows the Alerts flow (B-AL-01..12): ``requested`` when the assistant answered
a request with SetAlert (stored before the answer goes out, so an acknowledged request
is never lost), ``set`` once the device reported SetAlertSucceeded, ``deleting`` after
DeleteAlert was sent; the row goes when DeleteAlertSucceeded (or SetAlertFailed) comes.
SynchronizeAlert lists what is ``requested`` or ``set`` (B-AL-14). A repeating alert
(``repeat_days``) is moved on to its next occurrence after it rang and stays
``requested`` until the device confirms that SetAlert (B-AL-09/10).
"""

from __future__ import annotations

import json
from typing import Any

from .base import Alert
from .driver import Driver, Row
from .repositories import now_or

ALERT_STATUSES = ("requested", "set", "deleting")


def valid_repeat_days(days: str) -> bool:
    return bool(days) and len(set(days)) == len(days) and all(d in "0123456" for d in days)
_COLUMNS = ("device_id, token, type, scheduled_at, payload, status, created_at, updated_at,"
            " dialog_request_id, repeat_days")


def _alert(row: Row) -> Alert:
    payload = row[4] if isinstance(row[4], dict) else json.loads(row[4])
    return Alert(str(row[0]), str(row[1]), str(row[2]), float(row[3]), payload, str(row[5]),
                 float(row[6]), float(row[7]), row[8], row[9])


class SqlAlerts:
    def __init__(self, db: Driver) -> None:
        self._db = db

    async def put(self, device_id: str, payload: dict[str, Any], *, scheduled_at: float,
                  status: str = "requested", dialog_request_id: str | None = None,
                  repeat_days: str | None = None, now: float | None = None) -> Alert:
        if status not in ALERT_STATUSES:
            raise ValueError(f"alert status must be one of {ALERT_STATUSES}")
        token, kind = payload.get("token"), payload.get("type")
        if not isinstance(token, str) or not token or not isinstance(kind, str):
            raise ValueError("an alert payload needs a token and a type")
        if repeat_days is not None and not valid_repeat_days(repeat_days):
            raise ValueError("repeat_days must be distinct weekday digits 0 (Monday) to 6")
        at = now_or(now)
        row = await self._db.fetchrow(
            f"INSERT INTO alerts({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (device_id, token) DO UPDATE SET type = excluded.type,"
            " scheduled_at = excluded.scheduled_at, payload = excluded.payload,"
            " status = excluded.status, updated_at = excluded.updated_at,"
            " dialog_request_id = excluded.dialog_request_id, repeat_days = excluded.repeat_days"
            f" RETURNING {_COLUMNS}",
            device_id, token, kind, scheduled_at, json.dumps(payload, separators=(",", ":")),
            status, at, at, dialog_request_id, repeat_days,
        )
        assert row is not None  # RETURNING always yields the row
        return _alert(row)

    async def get(self, device_id: str, token: str) -> Alert | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM alerts WHERE device_id = ? AND token = ?", device_id, token)
        return None if row is None else _alert(row)

    async def list(self, device_id: str, *, statuses: tuple[str, ...] = ("requested", "set"),
                   ) -> list[Alert]:
        marks = ", ".join("?" * len(statuses))
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM alerts WHERE device_id = ? AND status IN ({marks})"
            " ORDER BY scheduled_at, token",
            device_id, *statuses,
        )
        return [_alert(r) for r in rows]

    async def set_status(self, device_id: str, token: str, status: str, *,
                         now: float | None = None) -> bool:
        if status not in ALERT_STATUSES:
            raise ValueError(f"alert status must be one of {ALERT_STATUSES}")
        return await self._db.execute(
            "UPDATE alerts SET status = ?, updated_at = ? WHERE device_id = ? AND token = ?",
            status, now_or(now), device_id, token) > 0

    async def remove(self, device_id: str, token: str) -> bool:
        return await self._db.execute(
            "DELETE FROM alerts WHERE device_id = ? AND token = ?", device_id, token) > 0
