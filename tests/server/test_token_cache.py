"""The hot-path token cache in front of the real token store (on the suite's back end):
expiry is checked on every hit, a revocation elsewhere takes effect within the TTL, one
made in this process at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from support.backend import database_for

from opencic.server.token_cache import TokenCache
from opencic.state.store import open_store


def test_cache_hits_expiry_and_revocation(tmp_path: Path) -> None:
    database = database_for(tmp_path)  # outside the loop: it may create a database

    async def go() -> None:
        store = await open_store(database, tmp_path)
        try:
            await store.devices.ensure(["dev", "dev2"])
            cache = TokenCache(store.tokens, ttl=0.4)
            live = (await store.tokens.issue("dev", ttl=60)).access_token
            grant = await cache.lookup(live)
            assert grant is not None and grant.device_id == "dev"
            assert await cache.lookup("unknown-token") is None

            await store.tokens.revoke(live)  # as the CLI would, from outside
            assert await cache.lookup(live) is not None  # trusted until the TTL passes
            await asyncio.sleep(0.45)
            assert await cache.lookup(live) is None

            short = (await store.tokens.issue("dev", ttl=0.2)).access_token
            assert await cache.lookup(short) is not None
            await asyncio.sleep(0.25)  # expired, though still within the cache TTL
            assert await cache.lookup(short) is None

            other = (await store.tokens.issue("dev2", ttl=60)).access_token
            assert await cache.lookup(other) is not None
            await store.tokens.revoke_device("dev2")
            cache.forget_device("dev2")  # revoked in this process: at once
            assert await cache.lookup(other) is None
        finally:
            await store.close()

    asyncio.run(go())
