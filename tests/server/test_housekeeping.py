"""Housekeeping (server/housekeeping.py) on a real SQLite store: the token sweep closes
exactly the downchannels whose token died, and the purge deletes only dead rows."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from support import backend

from opencic.server.downchannels import DownchannelRegistry
from opencic.server.housekeeping import Housekeeping, purge, sweep_tokens
from opencic.server.token_cache import TokenCache
from opencic.state.hashing import token_hash
from opencic.state.store import create_store


def test_sweep_closes_only_dead_tokens_and_forgets_their_grants(tmp_path: Path) -> None:
    database = backend.database_for(tmp_path)  # outside the loop: it may create one
    async def go() -> None:
        async with create_store(database, tmp_path) as store:
            await store.devices.ensure(["live", "revoked", "expired"])
            tokens = {d: (await store.tokens.issue(d, ttl=10 if d == "expired" else 3600)).access_token
                      for d in ("live", "revoked", "expired")}
            later = time.time() + 100  # the "expired" token has expired by then
            registry = DownchannelRegistry()
            channels = {d: registry.open(d, ("127.0.0.1", i), token_hash(t))
                        for i, (d, t) in enumerate(tokens.items())}
            cache = TokenCache(store.tokens, ttl=60)
            assert await cache.lookup(tokens["revoked"]) is not None  # cached grant
            await store.tokens.revoke(tokens["revoked"])
            closed = await sweep_tokens(store, registry, cache, now=later)
            assert sorted(closed) == ["expired", "revoked"]
            assert not channels["live"].closed
            assert channels["revoked"].closed and channels["expired"].closed
            assert channels["revoked"].queue.get_nowait() == b""  # a clean end, not a reset
            assert await cache.lookup(tokens["revoked"]) is None  # not served from the cache
            assert await sweep_tokens(store, registry, cache, now=later) == []

    asyncio.run(go())


def test_purge_removes_dead_rows_only(tmp_path: Path) -> None:
    database = backend.database_for(tmp_path)  # outside the loop: it may create one
    async def go() -> None:
        async with create_store(database, tmp_path) as store:
            await store.devices.ensure(["d"])
            await store.tokens.issue("d", ttl=10, now=1000.0)  # dead at 1010
            keep = await store.tokens.issue("d", ttl=10, refresh_ttl=1000, now=1000.0)  # refreshable
            await store.pending.enqueue("d", {"x": 1}, expires_at=1005.0, now=1000.0)
            await store.pending.enqueue("d", {"x": 2}, expires_at=None, now=1000.0)
            removed = await purge(store, now=1100.0)
            assert removed == {"tokens": 1, "auth_codes": 0, "pending_directives": 1}
            assert keep.refresh_token is not None
            assert await store.tokens.refresh(keep.refresh_token, ttl=10, refresh_ttl=10, now=1100.0)
            assert [p.directive for p in await store.pending.fetch("d", now=1100.0)] == [{"x": 2}]

    asyncio.run(go())


def test_housekeeping_runs_and_stops(tmp_path: Path) -> None:
    database = backend.database_for(tmp_path)  # outside the loop: it may create one
    async def go() -> None:
        async with create_store(database, tmp_path) as store:
            await store.devices.ensure(["d"])
            token = (await store.tokens.issue("d", ttl=3600)).access_token
            registry = DownchannelRegistry()
            channel = registry.open("d", ("127.0.0.1", 1), token_hash(token))
            keeper = Housekeeping(store, registry, None, sweep_seconds=0.05, purge_seconds=0.05)
            keeper.start()
            await asyncio.sleep(0.2)
            assert not channel.closed
            await store.tokens.revoke(token)
            for _ in range(40):
                if channel.closed:
                    break
                await asyncio.sleep(0.05)
            assert channel.closed
            await keeper.stop()

    asyncio.run(go())
