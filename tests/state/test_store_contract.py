"""The repository contract, run unchanged on SQLite and on PostgreSQL (real databases)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from opencic.state import AlreadyExists, MissingReference
from opencic.state.hashing import token_hash
from opencic.state.store import SqlStore, create_store


def with_store(database: tuple[str, Path], fn: Callable[[SqlStore], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with create_store(*database) as store:
            return await fn(store)

    return asyncio.run(go())


def test_users_add_get_list_remove(database: tuple[str, Path]) -> None:
    async def go(s: SqlStore) -> None:
        alice = await s.users.add("alice", "correct horse", now=100.0)
        bob = await s.users.add("bob")
        assert await s.users.get(alice.user_id) == alice
        assert await s.users.get_by_name("bob") == bob
        assert [u.name for u in await s.users.list()] == ["alice", "bob"]
        with pytest.raises(AlreadyExists):
            await s.users.add("alice")
        with pytest.raises(ValueError):
            await s.users.add(" padded ")
        assert await s.users.verify_password("alice", "correct horse") == alice
        assert await s.users.verify_password("alice", "wrong") is None
        assert await s.users.verify_password("bob", "anything") is None  # no password set
        assert await s.users.verify_password("nobody", "x") is None
        assert await s.users.set_password(bob.user_id, "pw")
        assert await s.users.verify_password("bob", "pw") == bob
        assert await s.users.remove(alice.user_id)
        assert not await s.users.remove(alice.user_id)
        assert await s.users.get(alice.user_id) is None
    with_store(database, go)


def test_clients_secret_is_hashed_and_verified(database: tuple[str, Path]) -> None:
    async def go(s: SqlStore) -> None:
        client = await s.clients.add("speaker-product", "s3cret", name="Speaker")
        assert await s.clients.get("speaker-product") == client
        assert await s.clients.verify("speaker-product", "s3cret") == client
        assert await s.clients.verify("speaker-product", "nope") is None
        assert await s.clients.verify("unknown", "s3cret") is None
        with pytest.raises(AlreadyExists):
            await s.clients.add("speaker-product", "other")
        raw = await s.driver.fetch("SELECT secret_hash FROM clients")
        assert "s3cret" not in raw[0][0] and raw[0][0].startswith("scrypt$")
        assert [c.client_id for c in await s.clients.list()] == ["speaker-product"]
        assert await s.clients.remove("speaker-product")
        assert await s.clients.get("speaker-product") is None
    with_store(database, go)


def test_devices_register_list_remove_cascades(database: tuple[str, Path]) -> None:
    async def go(s: SqlStore) -> None:
        user = await s.users.add("carol")
        await s.clients.add("prod", "x")
        d = await s.devices.register("kitchen", user_id=user.user_id, client_id="prod",
                                     model_id="m1", now=5.0)
        assert (d.device_id, d.user_id, d.client_id, d.model_id) == ("kitchen", user.user_id, "prod", "m1")
        # Re-registering updates the owner and model, keeps creation time.
        d2 = await s.devices.register("kitchen", user_id=user.user_id, model_id="m2", now=9.0)
        assert d2.model_id == "m2" and d2.created_at == 5.0
        await s.devices.ensure(["hall", "kitchen"])
        assert (await s.devices.get("kitchen")) == d2  # ensure leaves it alone
        assert [x.device_id for x in await s.devices.list()] == ["hall", "kitchen"]
        assert [x.device_id for x in await s.devices.list(user.user_id)] == ["kitchen"]
        with pytest.raises(MissingReference):
            await s.devices.register("attic", user_id="no-such-user")
        token = await s.tokens.issue("kitchen", ttl=60, user_id=user.user_id)
        await s.settings.put("kitchen", {"volume": "5"})
        await s.device_state.put("kitchen", [{"header": {}}])
        await s.pending.enqueue("kitchen", {"n": 1})
        # Removing the user removes their devices and everything hanging off them.
        assert await s.users.remove(user.user_id)
        assert await s.devices.get("kitchen") is None
        assert await s.tokens.lookup(token.access_token) is None
        assert await s.settings.get_all("kitchen") == {}
        assert await s.device_state.get("kitchen") is None
        assert await s.pending.fetch("kitchen") == []
        assert await s.devices.remove("hall") and not await s.devices.remove("hall")
    with_store(database, go)


def test_tokens_issue_lookup_expire_revoke(database: tuple[str, Path]) -> None:
    async def go(s: SqlStore) -> None:
        await s.devices.ensure(["dev-1", "dev-2"])
        t = await s.tokens.issue("dev-1", ttl=100, now=1000.0)
        assert t.refresh_token is None and t.expires_at == 1100.0 and t.expires_in(1050) == 50
        grant = await s.tokens.lookup(t.access_token, now=1050.0)
        assert grant is not None and grant.device_id == "dev-1" and not grant.guest
        assert await s.tokens.lookup(t.access_token, now=1100.0) is None  # expired
        assert await s.tokens.lookup("nope") is None and await s.tokens.lookup("") is None
        assert await s.tokens.lookup("x" * 10_000) is None
        assert await s.tokens.revoke(t.access_token)
        assert await s.tokens.lookup(t.access_token, now=1050.0) is None
        assert not await s.tokens.revoke("unknown")
        rows = await s.driver.fetch("SELECT access_hash FROM tokens")
        assert all(t.access_token not in r[0] for r in rows)  # only hashes are stored
        assert rows[0][0] == token_hash(t.access_token)
        with pytest.raises(MissingReference):
            await s.tokens.issue("unregistered", ttl=10)
        guest = await s.tokens.issue("dev-2", ttl=10, guest=True, now=0.0)
        g = await s.tokens.lookup(guest.access_token, now=1.0)
        assert g is not None and g.guest
        many = await s.tokens.issue_many(["dev-1", "dev-2"], ttl=50, now=0.0)
        assert [await s.tokens.lookup(m.access_token, now=1.0) is not None for m in many] == [True, True]
        assert await s.tokens.revoke_device("dev-1") == 1  # the other dev-1 token was revoked
        assert await s.tokens.lookup(many[0].access_token, now=1.0) is None
        assert await s.tokens.lookup(many[1].access_token, now=1.0) is not None
        # Housekeeping: revoked and fully expired pairs go, live ones stay.
        assert await s.tokens.purge_expired(now=20.0) == 3
        assert await s.tokens.lookup(many[1].access_token, now=21.0) is not None
    with_store(database, go)


def test_refresh_rotates_once(database: tuple[str, Path]) -> None:
    async def go(s: SqlStore) -> None:
        user = await s.users.add("dave")
        await s.clients.add("prod", "x")
        await s.devices.register("dev", user_id=user.user_id, client_id="prod")
        first = await s.tokens.issue("dev", ttl=10, refresh_ttl=100, user_id=user.user_id,
                                     client_id="prod", now=0.0)
        assert first.refresh_token is not None and first.refresh_expires_at == 100.0
        # The access token may be expired; the refresh token is what counts.
        second = await s.tokens.refresh(first.refresh_token, ttl=10, refresh_ttl=100, now=50.0)
        assert second is not None and second.refresh_token not in (None, first.refresh_token)
        grant = await s.tokens.lookup(second.access_token, now=55.0)
        assert grant is not None and (grant.user_id, grant.client_id) == (user.user_id, "prod")
        assert await s.tokens.lookup(first.access_token, now=5.0) is None  # old pair revoked
        # A refresh token works once, even when two requests race with it.
        assert await s.tokens.refresh(first.refresh_token, ttl=10, refresh_ttl=100, now=51.0) is None
        assert second.refresh_token is not None
        racers = await asyncio.gather(*[
            s.tokens.refresh(second.refresh_token, ttl=10, refresh_ttl=100, now=60.0)
            for _ in range(5)
        ])
        winners = [r for r in racers if r is not None]
        assert len(winners) == 1
        third = winners[0]
        assert third.refresh_token is not None
        assert await s.tokens.refresh(third.refresh_token, ttl=10, refresh_ttl=100, now=161.0) is None
        # Revoking by refresh token kills the pair's access token too.
        fourth = await s.tokens.issue("dev", ttl=10, refresh_ttl=100, now=200.0)
        assert fourth.refresh_token is not None
        assert await s.tokens.revoke(fourth.refresh_token)
        assert await s.tokens.lookup(fourth.access_token, now=201.0) is None
    with_store(database, go)


def test_settings_and_device_state(database: tuple[str, Path]) -> None:
    async def go(s: SqlStore) -> None:
        await s.devices.ensure(["dev"])
        assert await s.settings.get("dev", "volume") is None
        await s.settings.put("dev", {"volume": "5", "locale": "en-US"}, now=1.0)
        await s.settings.put("dev", {"volume": "7"}, now=2.0)
        assert await s.settings.get("dev", "volume") == "7"
        assert await s.settings.get_all("dev") == {"locale": "en-US", "volume": "7"}
        assert await s.settings.delete("dev", "locale") and not await s.settings.delete("dev", "locale")
        with pytest.raises(MissingReference):
            await s.settings.put("ghost", {"a": "b"})
        context: list[dict[str, Any]] = [
            {"header": {"namespace": "Device", "name": "DeviceState"},
             "payload": {"volume": {"level": 7, "mute": False}, "text": "日本語"}},
        ]
        assert await s.device_state.get("dev") is None
        await s.device_state.put("dev", context, now=3.0)
        await s.device_state.put("dev", context + [{"more": None}], now=4.0)
        state = await s.device_state.get("dev")
        assert state is not None and state.context == context + [{"more": None}]
        assert state.updated_at == 4.0
    with_store(database, go)


def test_pending_directives_queue(database: tuple[str, Path]) -> None:
    async def go(s: SqlStore) -> None:
        await s.devices.ensure(["a", "b"])
        seqs = [await s.pending.enqueue("a", {"n": i}, now=float(i)) for i in range(5)]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        await s.pending.enqueue("b", {"n": "b"})
        stale = await s.pending.enqueue("a", {"n": "stale"}, expires_at=10.0, now=6.0)
        got = await s.pending.fetch("a", now=20.0)
        assert [p.directive["n"] for p in got] == [0, 1, 2, 3, 4]  # in order, stale hidden
        assert [p.directive["n"] for p in await s.pending.fetch("a", limit=2, now=20.0)] == [0, 1]
        assert len(await s.pending.fetch("a", now=9.0)) == 6  # not yet stale
        # Acknowledged items are gone; a device cannot acknowledge another's.
        b_seq = (await s.pending.fetch("b"))[0].seq
        assert await s.pending.ack("a", [seqs[0], seqs[1], b_seq]) == 2
        assert [p.seq for p in await s.pending.fetch("a", now=20.0)] == seqs[2:]
        assert len(await s.pending.fetch("b")) == 1
        assert await s.pending.ack("a", []) == 0
        assert await s.pending.purge_expired(now=20.0) == 1
        assert stale not in [p.seq for p in await s.pending.fetch("a", now=0.0)]
        with pytest.raises(MissingReference):
            await s.pending.enqueue("ghost", {})
    with_store(database, go)


def test_transaction_rolls_back_on_error(database: tuple[str, Path]) -> None:
    async def go(s: SqlStore) -> None:
        await s.devices.ensure(["dev"])
        with pytest.raises(RuntimeError):
            async with s.driver.transaction() as tx:
                await tx.execute("INSERT INTO settings(device_id, key, value, updated_at)"
                                 " VALUES (?, ?, ?, ?)", "dev", "k", "v", 0.0)
                raise RuntimeError("boom")
        assert await s.settings.get_all("dev") == {}
        # The store is still usable, and concurrent callers do not see each other's
        # half-done transactions.
        await asyncio.gather(*[s.settings.put("dev", {f"k{i}": str(i)}) for i in range(20)])
        assert len(await s.settings.get_all("dev")) == 20
    with_store(database, go)


def test_live_among_and_purge_of_codes(database: tuple[str, Path]) -> None:
    """The token sweep's query (server/housekeeping.py) and the purge of expired codes."""

    async def go(store: SqlStore) -> None:
        await store.devices.ensure(["d1", "d2", "d3"])
        live = await store.tokens.issue("d1", ttl=100, now=1000.0)
        revoked = await store.tokens.issue("d2", ttl=100, now=1000.0)
        expired = await store.tokens.issue("d3", ttl=10, now=1000.0)
        await store.tokens.revoke(revoked.access_token)
        hashes = [token_hash(t.access_token) for t in (live, revoked, expired)] + ["0" * 64]
        assert await store.tokens.live_among(hashes, now=1050.0) == {hashes[0]}
        # More hashes than one query takes: batched, same answer.
        many = hashes + [f"{i:064x}" for i in range(1200)]
        assert await store.tokens.live_among(many, now=1050.0) == {hashes[0]}
        assert await store.tokens.live_among([], now=1050.0) == set()

        await store.clients.add("c1", "secret")
        await store.auth_codes.issue(client_id="c1", user_id=None, device_id="d1",
                                     model_id="m", ttl=60, guest=True, now=1000.0)
        assert await store.auth_codes.purge_expired(now=1030.0) == 0
        assert await store.auth_codes.purge_expired(now=1061.0) == 1

    with_store(database, go)


def test_alerts_put_list_status_remove(database: tuple[str, Path]) -> None:
    async def go(store: SqlStore) -> None:
        await store.devices.ensure(["d1", "d2"])
        late = {"token": "a2", "type": "ALARM", "scheduledTime": "2026-11-24T08:00:00Z"}
        early = {"token": "a1", "type": "TIMER", "scheduledTime": "2026-11-24T07:00:00Z"}
        await store.alerts.put("d1", late, scheduled_at=200.0, now=1.0)
        stored = await store.alerts.put("d1", early, scheduled_at=100.0, now=2.0)
        assert stored.status == "requested" and stored.payload == early
        assert [a.token for a in await store.alerts.list("d1")] == ["a1", "a2"]  # soonest first
        assert await store.alerts.list("d2") == []  # per device
        assert await store.alerts.get("d2", "a1") is None
        assert await store.alerts.set_status("d1", "a1", "set")
        assert not await store.alerts.set_status("d2", "a1", "set")
        assert await store.alerts.set_status("d1", "a2", "deleting")
        assert [a.token for a in await store.alerts.list("d1")] == ["a1"]
        assert [a.token for a in await store.alerts.list("d1", statuses=("deleting",))] == ["a2"]
        # Same token again: a modification (B-AL-02), not a second alert.
        moved = {**early, "scheduledTime": "2026-11-24T09:00:00Z"}
        await store.alerts.put("d1", moved, scheduled_at=300.0, status="set")
        got = await store.alerts.get("d1", "a1")
        assert got is not None and got.payload == moved and got.created_at == 2.0
        assert got.repeat_days is None  # one-off
        # A repeating alarm keeps its weekdays (B-AL-09/10), and a move keeps them too.
        weekly = {"token": "a3", "type": "ALARM", "scheduledTime": "2026-11-24T06:00:00Z"}
        await store.alerts.put("d1", weekly, scheduled_at=400.0, repeat_days="01234")
        await store.alerts.put("d1", {**weekly, "scheduledTime": "2026-11-25T06:00:00Z"},
                               scheduled_at=500.0, status="set", repeat_days="01234")
        again = await store.alerts.get("d1", "a3")
        assert again is not None and again.repeat_days == "01234" and again.scheduled_at == 500.0
        with pytest.raises(ValueError, match="repeat_days"):
            await store.alerts.put("d1", weekly, scheduled_at=1.0, repeat_days="0099")
        with pytest.raises(ValueError):
            await store.alerts.put("d1", {"type": "ALARM"}, scheduled_at=1.0)
        with pytest.raises(MissingReference):
            await store.alerts.put("nope", early, scheduled_at=1.0)
        assert await store.alerts.remove("d1", "a1") and not await store.alerts.remove("d1", "a1")
        await store.devices.remove("d1")  # cascade
        assert await store.alerts.list("d1", statuses=("requested", "set", "deleting")) == []

    with_store(database, go)
