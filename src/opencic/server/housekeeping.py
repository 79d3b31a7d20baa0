"""Background upkeep of one server process: the token sweep and the purge of dead rows.

**Token sweep.** A downchannel lives only as long as the access token that opened it
(issue 3: a revoked or expired token's open downchannel is closed). Revocations made
by this process (``/token`` grant_type=delete) close the stream at once; those made
elsewhere — ``opencic token revoke``, ``opencic user remove`` (its tokens go with it),
another node, or plain expiry — are found by asking the store every
``token_sweep_seconds`` which of the open streams' token hashes are still live. One
indexed lookup per open downchannel, in batches: at 10 000 streams that is 20 queries
per sweep. The closed device reconnects, gets 401 (B-CN-04) and refreshes (B-CN-05).

**Purge.** Every ``purge_interval_seconds`` the rows nobody can use any more are
deleted: dead token pairs, expired authorization codes and expired pending directives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..state.base import Store
from .downchannels import DownchannelRegistry
from .token_cache import TokenCache

log = logging.getLogger("opencic.server")


async def sweep_tokens(store: Store, registry: DownchannelRegistry,
                       cache: TokenCache | None = None, *, now: float | None = None) -> list[str]:
    """Closes the downchannels whose token is no longer live; returns their devices."""
    hashes = registry.token_hashes()
    if not hashes:
        return []
    live = await store.tokens.live_among(hashes, now=now)
    dead = set(hashes) - live
    if not dead:
        return []
    closed = registry.close_tokens(dead)
    if cache is not None:
        cache.forget_hashes(dead)
    for device_id in closed:
        log.info("downchannel closed: its access token was revoked or expired",
                 extra={"device": device_id})
    return closed


async def purge(store: Store, *, now: float | None = None) -> dict[str, int]:
    at = time.time() if now is None else now
    return {
        "tokens": await store.tokens.purge_expired(now=at),
        "auth_codes": await store.auth_codes.purge_expired(now=at),
        "pending_directives": await store.pending.purge_expired(now=at),
    }


@dataclass
class Housekeeping:
    store: Store
    registry: DownchannelRegistry
    cache: TokenCache | None
    sweep_seconds: float
    purge_seconds: float
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        if self.sweep_seconds > 0:
            self._tasks.append(asyncio.create_task(
                self._every(self.sweep_seconds, self._sweep), name="token-sweep"))
        if self.purge_seconds > 0:
            self._tasks.append(asyncio.create_task(
                self._every(self.purge_seconds, self._purge), name="purge"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _sweep(self) -> None:
        await sweep_tokens(self.store, self.registry, self.cache)

    async def _purge(self) -> None:
        removed = await purge(self.store)
        if any(removed.values()):
            log.info("purged dead rows", extra=removed)

    @staticmethod
    async def _every(seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:  # one failed round (database restarting…) must not end upkeep
                log.exception("housekeeping job failed", extra={"job": getattr(job, "__name__", "?")})
