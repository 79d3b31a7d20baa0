"""Users, clients, devices, settings, device state and pending directives, in SQL
that both back ends run unchanged (see ``driver.py``). Tokens are in ``tokens.py``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .base import Client, Device, DeviceState, PendingDirective, User
from .driver import Driver, Row
from .hashing import hash_secret_async, verify_secret_async

MAX_NAME_LENGTH = 128


def now_or(now: float | None) -> float:
    return time.time() if now is None else now


def valid_identifier(value: str) -> bool:
    """Ids and names: 1-128 printable characters without surrounding spaces."""
    return 0 < len(value) <= MAX_NAME_LENGTH and value.isprintable() and value.strip() == value


def _check(kind: str, value: str) -> None:
    if not valid_identifier(value):
        raise ValueError(f"{kind} must be 1-{MAX_NAME_LENGTH} printable characters "
                         "without surrounding spaces")


class SqlUsers:
    def __init__(self, db: Driver) -> None:
        self._db = db

    @staticmethod
    def _user(row: Row) -> User:
        return User(str(row[0]), str(row[1]), float(row[2]))

    async def add(self, name: str, password: str | None = None, *, now: float | None = None) -> User:
        _check("user name", name)
        hashed = None if password is None else await hash_secret_async(password)
        user = User(uuid.uuid4().hex, name, now_or(now))
        await self._db.execute(
            "INSERT INTO users(user_id, name, password_hash, created_at) VALUES (?, ?, ?, ?)",
            user.user_id, user.name, hashed, user.created_at,
        )
        return user

    async def get(self, user_id: str) -> User | None:
        row = await self._db.fetchrow(
            "SELECT user_id, name, created_at FROM users WHERE user_id = ?", user_id)
        return None if row is None else self._user(row)

    async def get_by_name(self, name: str) -> User | None:
        row = await self._db.fetchrow(
            "SELECT user_id, name, created_at FROM users WHERE name = ?", name)
        return None if row is None else self._user(row)

    async def list(self) -> list[User]:
        rows = await self._db.fetch("SELECT user_id, name, created_at FROM users ORDER BY name")
        return [self._user(r) for r in rows]

    async def remove(self, user_id: str) -> bool:
        return await self._db.execute("DELETE FROM users WHERE user_id = ?", user_id) > 0

    async def verify_password(self, name: str, password: str) -> User | None:
        row = await self._db.fetchrow(
            "SELECT user_id, name, created_at, password_hash FROM users WHERE name = ?", name)
        stored = None if row is None else row[3]
        if not await verify_secret_async(password, stored) or row is None:
            return None
        return self._user(row)

    async def set_password(self, user_id: str, password: str) -> bool:
        hashed = await hash_secret_async(password)
        return await self._db.execute(
            "UPDATE users SET password_hash = ? WHERE user_id = ?", hashed, user_id) > 0


class SqlClients:
    def __init__(self, db: Driver) -> None:
        self._db = db

    @staticmethod
    def _client(row: Row) -> Client:
        return Client(str(row[0]), str(row[1]), float(row[2]))

    async def add(self, client_id: str, secret: str, *, name: str = "",
                  now: float | None = None) -> Client:
        _check("client id", client_id)
        if not secret:
            raise ValueError("a client secret must not be empty")
        client = Client(client_id, name, now_or(now))
        await self._db.execute(
            "INSERT INTO clients(client_id, name, secret_hash, created_at) VALUES (?, ?, ?, ?)",
            client.client_id, client.name, await hash_secret_async(secret), client.created_at,
        )
        return client

    async def get(self, client_id: str) -> Client | None:
        row = await self._db.fetchrow(
            "SELECT client_id, name, created_at FROM clients WHERE client_id = ?", client_id)
        return None if row is None else self._client(row)

    async def list(self) -> list[Client]:
        rows = await self._db.fetch(
            "SELECT client_id, name, created_at FROM clients ORDER BY client_id")
        return [self._client(r) for r in rows]

    async def remove(self, client_id: str) -> bool:
        return await self._db.execute("DELETE FROM clients WHERE client_id = ?", client_id) > 0

    async def verify(self, client_id: str, secret: str) -> Client | None:
        row = await self._db.fetchrow(
            "SELECT client_id, name, created_at, secret_hash FROM clients WHERE client_id = ?",
            client_id)
        stored = None if row is None else row[3]
        if not await verify_secret_async(secret, stored) or row is None:
            return None
        return self._client(row)


class SqlDevices:
    _COLUMNS = "device_id, user_id, client_id, model_id, created_at"

    def __init__(self, db: Driver) -> None:
        self._db = db

    @staticmethod
    def _device(row: Row) -> Device:
        return Device(str(row[0]), row[1], row[2], row[3], float(row[4]))

    async def register(self, device_id: str, *, user_id: str | None = None,
                       client_id: str | None = None, model_id: str | None = None,
                       now: float | None = None) -> Device:
        _check("device id", device_id)
        row = await self._db.fetchrow(
            f"INSERT INTO devices({self._COLUMNS}) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id,"
            " client_id = excluded.client_id, model_id = excluded.model_id"
            f" RETURNING {self._COLUMNS}",
            device_id, user_id, client_id, model_id, now_or(now),
        )
        assert row is not None  # RETURNING always yields the row
        return self._device(row)

    async def ensure(self, device_ids: Sequence[str], *, now: float | None = None) -> None:
        for device_id in device_ids:
            _check("device id", device_id)
        created = now_or(now)
        await self._db.executemany(
            "INSERT INTO devices(device_id, created_at) VALUES (?, ?)"
            " ON CONFLICT (device_id) DO NOTHING",
            [(d, created) for d in device_ids],
        )

    async def get(self, device_id: str) -> Device | None:
        row = await self._db.fetchrow(
            f"SELECT {self._COLUMNS} FROM devices WHERE device_id = ?", device_id)
        return None if row is None else self._device(row)

    async def list(self, user_id: str | None = None) -> list[Device]:
        if user_id is None:
            rows = await self._db.fetch(f"SELECT {self._COLUMNS} FROM devices ORDER BY device_id")
        else:
            rows = await self._db.fetch(
                f"SELECT {self._COLUMNS} FROM devices WHERE user_id = ? ORDER BY device_id", user_id)
        return [self._device(r) for r in rows]

    async def remove(self, device_id: str) -> bool:
        return await self._db.execute("DELETE FROM devices WHERE device_id = ?", device_id) > 0


class SqlSettings:
    def __init__(self, db: Driver) -> None:
        self._db = db

    async def get(self, device_id: str, key: str) -> str | None:
        row = await self._db.fetchrow(
            "SELECT value FROM settings WHERE device_id = ? AND key = ?", device_id, key)
        return None if row is None else str(row[0])

    async def get_all(self, device_id: str) -> dict[str, str]:
        rows = await self._db.fetch(
            "SELECT key, value FROM settings WHERE device_id = ? ORDER BY key", device_id)
        return {str(k): str(v) for k, v in rows}

    async def put(self, device_id: str, values: Mapping[str, str], *,
                  now: float | None = None) -> None:
        if not values:
            return
        updated = now_or(now)
        async with self._db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO settings(device_id, key, value, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (device_id, key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                [(device_id, k, str(v), updated) for k, v in values.items()],
            )

    async def delete(self, device_id: str, key: str) -> bool:
        return await self._db.execute(
            "DELETE FROM settings WHERE device_id = ? AND key = ?", device_id, key) > 0


class SqlDeviceState:
    def __init__(self, db: Driver) -> None:
        self._db = db

    async def put(self, device_id: str, context: Any, *, now: float | None = None) -> None:
        await self._db.execute(
            "INSERT INTO device_state(device_id, context, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (device_id) DO UPDATE SET context = excluded.context,"
            " updated_at = excluded.updated_at",
            device_id, json.dumps(context, separators=(",", ":")), now_or(now),
        )

    async def get(self, device_id: str) -> DeviceState | None:
        row = await self._db.fetchrow(
            "SELECT context, updated_at FROM device_state WHERE device_id = ?", device_id)
        if row is None:
            return None
        return DeviceState(device_id, json.loads(row[0]), float(row[1]))


class SqlPendingDirectives:
    def __init__(self, db: Driver) -> None:
        self._db = db

    async def enqueue(self, device_id: str, directive: Any, *, expires_at: float | None = None,
                      now: float | None = None) -> int:
        row = await self._db.fetchrow(
            "INSERT INTO pending_directives(device_id, directive, created_at, expires_at)"
            " VALUES (?, ?, ?, ?) RETURNING seq",
            device_id, json.dumps(directive, separators=(",", ":")), now_or(now), expires_at,
        )
        assert row is not None  # RETURNING always yields the row
        return int(row[0])

    async def fetch(self, device_id: str, *, limit: int = 100,
                    now: float | None = None) -> list[PendingDirective]:
        rows = await self._db.fetch(
            "SELECT seq, directive, created_at, expires_at FROM pending_directives"
            " WHERE device_id = ? AND (expires_at IS NULL OR expires_at > ?)"
            " ORDER BY seq LIMIT ?",
            device_id, now_or(now), limit,
        )
        return [
            PendingDirective(int(r[0]), device_id, json.loads(r[1]), float(r[2]),
                             None if r[3] is None else float(r[3]))
            for r in rows
        ]

    async def ack(self, device_id: str, seqs: Sequence[int]) -> int:
        if not seqs:
            return 0
        # The device id is part of the key: one device cannot acknowledge another's.
        async with self._db.transaction() as tx:
            done = 0
            for seq in seqs:
                done += await tx.execute(
                    "DELETE FROM pending_directives WHERE device_id = ? AND seq = ?",
                    device_id, int(seq))
            return done

    async def purge_expired(self, *, now: float | None = None) -> int:
        return await self._db.execute(
            "DELETE FROM pending_directives WHERE expires_at IS NOT NULL AND expires_at <= ?",
            now_or(now))
