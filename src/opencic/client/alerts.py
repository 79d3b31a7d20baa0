"""The client side of Alerts (B-AL-02..13, B-CX-02): keep the alerts the cloud sets,
ring them on time, report them in context.

Attach to a :class:`~opencic.client.CICClient`::

    alerts = DeviceAlerts()
    client = CICClient(url, token, context_provider=alerts.with_context(default_context))
    alerts.attach(client)
    await alerts.synchronize()  # B-AL-13: after (re)connecting

* SetAlert creates (unknown token) or updates the alert, then SetAlertSucceeded, or
  SetAlertFailed for a payload it cannot use (B-AL-02).
* DeleteAlert -> DeleteAlertSucceeded/Failed (B-AL-12); StopAlert -> AlertStopped
  (B-AL-08); SynchronizeAlert (and the deprecated System.SynchronizeState) replace the
  local alerts (B-AL-13).
* At ``scheduledTime`` the alert rings: ``on_ring`` is called and AlertStarted sent
  (B-AL-05); while it rings it is listed in ``activeAlerts`` (B-CX-02: the values are
  copied from the directives unchanged). :meth:`request_stop` is the stop button
  (RequestAlertStop, B-AL-06).

Alerts live in memory; an application that must survive a restart re-synchronises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..protocol.alert_time import parse_wire_time
from ..protocol.messages import ContextObject

if TYPE_CHECKING:
    from .queues import QueuedDirective
    from .sdk import CICClient

log = logging.getLogger("opencic.client")

KINDS = frozenset({"ALARM", "TIMER", "REMINDER", "ACTIONTIMER"})
# The directives DeviceAlerts handles.
DIRECTIVES = ("Alerts.SetAlert", "Alerts.DeleteAlert", "Alerts.StopAlert",
              "Alerts.SynchronizeAlert", "System.SynchronizeState")


def _when(payload: dict[str, Any]) -> float | None:
    # No zone: the device's local time.
    parsed = parse_wire_time(payload.get("scheduledTime"), naive_zone=None)
    return None if parsed is None else parsed.timestamp()


class DeviceAlerts:
    def __init__(self, *, on_ring: Callable[[dict[str, Any]], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.alerts: dict[str, dict[str, Any]] = {}  # token -> SetAlert payload as received
        self.ringing: set[str] = set()
        self.on_ring = on_ring
        self.clock = clock
        self._client: CICClient | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._sends: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ wiring

    def attach(self, client: CICClient) -> None:
        self._client = client
        client.on("Alerts.SetAlert", self._on_set)
        client.on("Alerts.DeleteAlert", self._on_delete)
        client.on("Alerts.StopAlert", self._on_stop)
        client.on("Alerts.SynchronizeAlert", self._on_sync)
        client.on("System.SynchronizeState", self._on_sync)

    def context(self) -> ContextObject:
        """Alerts.AlertsState (B-AL-05, B-CX-02)."""
        infos = [{"token": t, "type": a["type"], "scheduledTime": a["scheduledTime"]}
                 for t, a in self.alerts.items()]
        return ContextObject("Alerts", "AlertsState", {
            "allAlerts": infos,
            "activeAlerts": [i for i in infos if i["token"] in self.ringing],
        })

    def with_context(self, base: Callable[[], Iterable[ContextObject]]) -> Callable[[], list[ContextObject]]:
        """A context provider: ``base``'s objects plus this AlertsState."""
        return lambda: [*base(), self.context()]

    async def synchronize(self) -> None:
        """RequestSynchronizeAlert (B-AL-13); the SynchronizeAlert answer replaces ours."""
        await self._send("RequestSynchronizeAlert", {})

    async def request_stop(self, token: str) -> None:
        """The stop button (B-AL-06): the alert stops for good when StopAlert comes."""
        alert = self.alerts.get(token)
        if alert is not None:
            await self._send("RequestAlertStop", {"token": token, "type": alert["type"]})

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    # ------------------------------------------------------------------ handlers

    async def _on_set(self, item: QueuedDirective) -> None:
        payload = item.directive.payload
        token, kind = payload.get("token"), payload.get("type")
        if not isinstance(token, str) or not token or kind not in KINDS or _when(payload) is None:
            log.warning("SetAlert without a usable token, type or scheduledTime: %s", payload)
            await self._send("SetAlertFailed", {"token": str(token or ""), "type": str(kind or "ALARM")})
            return
        self.alerts[token] = dict(payload)
        self._schedule(token)
        await self._send("SetAlertSucceeded", {"token": token, "type": kind})

    async def _on_delete(self, item: QueuedDirective) -> None:
        token, kind = item.directive.payload.get("token"), item.directive.payload.get("type")
        name = "DeleteAlertSucceeded" if self._forget(token) else "DeleteAlertFailed"
        await self._send(name, {"token": str(token), "type": str(kind)})

    async def _on_stop(self, item: QueuedDirective) -> None:
        token, kind = item.directive.payload.get("token"), item.directive.payload.get("type")
        if isinstance(token, str) and token in self.ringing:
            self.ringing.discard(token)
        await self._send("AlertStopped", {"token": str(token), "type": str(kind)})

    async def _on_sync(self, item: QueuedDirective) -> None:
        items = item.directive.payload.get("allAlerts")
        for known in list(self.alerts):
            self._forget(known)
        for payload in items if isinstance(items, list) else []:
            if not isinstance(payload, dict):
                continue
            token = payload.get("token")
            if isinstance(token, str) and payload.get("type") in KINDS and _when(payload) is not None:
                self.alerts[token] = dict(payload)
                self._schedule(token)

    # ------------------------------------------------------------------ ringing

    def _forget(self, token: Any) -> bool:
        if not isinstance(token, str) or token not in self.alerts:
            return False
        del self.alerts[token]
        self.ringing.discard(token)
        timer = self._timers.pop(token, None)
        if timer is not None:
            timer.cancel()
        return True

    def _schedule(self, token: str) -> None:
        old = self._timers.pop(token, None)
        if old is not None:
            old.cancel()
        when = _when(self.alerts[token])
        assert when is not None
        delay = max(0.0, when - self.clock())
        loop = asyncio.get_running_loop()
        self._timers[token] = loop.call_later(delay, self._ring, token)

    def _ring(self, token: str) -> None:
        self._timers.pop(token, None)
        alert = self.alerts.get(token)
        if alert is None:
            return
        self.ringing.add(token)
        if self.on_ring is not None:
            self.on_ring(alert)
        task = asyncio.ensure_future(self._send("AlertStarted", {"token": token, "type": alert["type"]}))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, name: str, payload: dict[str, Any]) -> None:
        if self._client is None:
            raise RuntimeError("DeviceAlerts.attach(client) first")
        event = self._client.create_event("Alerts", name, payload)
        with contextlib.suppress(Exception):
            response = await self._client.send_event(event)
            if response.status >= 400:
                log.warning("Alerts.%s answered %s", name, response.status)
