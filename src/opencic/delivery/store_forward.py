"""In-process delivery with store-and-forward for offline devices.

A push goes straight down the device's downchannel when this process holds it. When
the device is offline and the push asks for it (``queue_seconds``), the directives are
stored (``pending_directives``) and sent on the device's next downchannel, right after
Clova.Hello (B-DC-02), in push order; they are acknowledged (deleted) once handed to
the stream. A per-device lock keeps the two ways in (a push that finds the device just
connected, a downchannel that just opened) from sending the same row twice.

Delivery is at most once per stored row from the server's side: CIC has no
acknowledgement of a downchannel directive, so a device that drops the connection
right after the bytes were written loses them, as it would a live push.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..protocol.messages import Directive, parse_directive_json
from ..state.base import Store

log = logging.getLogger("opencic.delivery")


class Downchannels(Protocol):
    """What delivery needs of the open downchannels (server/downchannels.py holds them;
    delivery does not import the server layer, design.md)."""

    def push(self, device_id: str, directives: Iterable[Directive]) -> bool: ...
    def broadcast(self, directives: list[Directive]) -> int: ...
    def get(self, device_id: str) -> object | None: ...


@dataclass
class PushResult:
    delivered: int = 0
    offline: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "offline": self.offline, "queued": self.queued}


class Delivery:
    def __init__(self, registry: Downchannels, store: Store) -> None:
        self.registry = registry
        self.store = store
        # Weak: a device's lock lives while someone holds or waits for it.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def push(self, devices: Sequence[str] | None, directives: list[Directive], *,
                   queue_seconds: float = 0.0) -> PushResult:
        """``devices`` None: every live downchannel (nothing is queued for "all")."""
        if devices is None:
            return PushResult(self.registry.broadcast(directives))
        result = PushResult()
        for device_id in devices:
            if self.registry.push(device_id, directives):
                result.delivered += 1
                continue
            result.offline.append(device_id)
            if queue_seconds > 0 and await self.store.devices.get(device_id) is not None:
                await self._enqueue(device_id, directives, time.time() + queue_seconds)
                result.queued.append(device_id)
                # The device may have connected while we wrote: hand it over now.
                if self.registry.get(device_id) is not None:
                    await self.flush(device_id)
        return result

    async def _enqueue(self, device_id: str, directives: Iterable[Directive],
                       expires_at: float) -> None:
        for directive in directives:
            await self.store.pending.enqueue(device_id, directive.to_json(), expires_at=expires_at)

    async def flush(self, device_id: str) -> int:
        """Sends the device's stored directives down its open downchannel; how many."""
        lock = self._locks.get(device_id)
        if lock is None:
            lock = self._locks[device_id] = asyncio.Lock()
        async with lock:
            pending = await self.store.pending.fetch(device_id)
            if not pending:
                return 0
            directives = [parse_directive_json(row.directive) for row in pending]
            if not self.registry.push(device_id, directives):
                return 0  # gone again: they stay stored for the next time
            await self.store.pending.ack(device_id, [row.seq for row in pending])
            log.info("stored directives delivered", extra={
                "device": device_id, "count": len(pending)})
            return len(pending)
