"""scheduledTime on the wire (Alerts.SetAlert): written in UTC with Z, read leniently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from opencic.protocol.alert_time import parse_wire_time, wire_time


def test_written_in_utc_with_z() -> None:
    when = datetime(2026, 11, 24, 7, 30, tzinfo=timezone(timedelta(hours=9)))
    assert wire_time(when) == "2026-11-23T22:30:00Z"
    assert parse_wire_time(wire_time(when)) == when


def test_offsets_and_zoneless_values() -> None:
    assert parse_wire_time("2026-11-24T07:30:00+09:00") == datetime(2026, 11, 23, 22, 30,
                                                                     tzinfo=UTC)
    assert parse_wire_time("2026-11-24T07:30:00") == datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
    local = parse_wire_time("2026-11-24T07:30:00", naive_zone=None)  # the device's clock
    assert local is not None and local == datetime(2026, 11, 24, 7, 30).astimezone()


def test_not_a_time_is_none() -> None:
    for value in (None, 5, "", "tomorrow", "2026-13-01T00:00:00Z"):
        assert parse_wire_time(value) is None
