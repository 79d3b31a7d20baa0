"""Events a device sends about its own state, answered from and written to the store.

* Alerts (B-AL-02..14): SetAlertSucceeded -> Speak + Alarm/Timer template (B-AL-03),
  SetAlertFailed -> an apology, RequestAlertStop -> StopAlert (B-AL-07), AlertStopped
  -> DeleteAlert for a one-off alert, SetAlert with the next occurrence (same token)
  for a repeating alarm (B-AL-09/10), DeleteAlertSucceeded/Failed ->
  bookkeeping, RequestSynchronizeAlert -> SynchronizeAlert (B-AL-14) and the
  deprecated System.RequestSynchronizeState -> System.SynchronizeState.
* Settings.Report (B-SE-02/04/05): the configuration map is stored for the device.
* Every event's context: kept as the device's latest state (Alerts.AlertsState,
  AudioPlayer.PlaybackState, Device.DeviceState, …) — written only when it changed.

Alerts and settings are keyed by device: a device only ever reads and writes its own
rows (per-user isolation follows from the token binding one device).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..protocol.alert_time import parse_wire_time, wire_time
from ..protocol.errors import BadRequest
from ..protocol.messages import Directive, Event
from ..state.base import Alert, Store
from .capabilities.alerts import (
    MarkAlert,
    SaveAlert,
    confirmation,
    failure,
    next_on_days,
)
from .locales import locale_for
from .locales.en import ALARM
from .reply import Reply
from .turn import Clock, DeviceContext, IntentResponse

log = logging.getLogger("opencic.assistant")

# Devices whose last stored context we remember (hash), to skip identical writes.
CONTEXT_MEMORY = 100_000

class Render(Protocol):
    """Assistant.render: an answer in ``lang`` as directives and attachments."""

    def __call__(self, response: IntentResponse, dialog_request_id: str | None,
                 lang: str = "en") -> Awaitable[Reply]: ...


def _alert_ref(event: Event) -> tuple[str, str]:
    """(token, type) of an Alerts event; without them nothing can be done: 400."""
    token, kind = event.payload.get("token"), event.payload.get("type")
    if isinstance(token, str) and token and isinstance(kind, str) and kind:
        return token, kind
    raise BadRequest(f"{event.qualified_name} needs payload.token and payload.type "
                     "(strings: the alert's token and type as the SetAlert gave them)")


class DeviceEvents:
    def __init__(self, store: Store, render: Render, clock: Clock,
                 language_of: Callable[[str], str] = lambda device_id: "en") -> None:
        self.store = store
        self.render = render
        self.clock = clock
        # These events carry no language: answer in the one the device last spoke in.
        self.language_of = language_of
        self._context_seen: OrderedDict[str, bytes] = OrderedDict()
        self.routes: dict[str, Callable[[Event, DeviceContext], Awaitable[Reply]]] = {
            "Alerts.SetAlertSucceeded": self._set_succeeded,
            "Alerts.SetAlertFailed": self._set_failed,
            "Alerts.RequestAlertStop": self._request_stop,
            "Alerts.AlertStopped": self._stopped,
            "Alerts.DeleteAlertSucceeded": self._deleted,
            "Alerts.DeleteAlertFailed": self._delete_failed,
            "Alerts.RequestSynchronizeAlert": self._synchronize,
            "System.RequestSynchronizeState": self._synchronize_state,
            "Settings.Report": self._settings_report,
        }

    # ------------------------------------------------------------------ effects

    async def apply(self, effects: tuple[Any, ...], event: Event, device: DeviceContext) -> None:
        """Stores what a capability's answer commits to, before the answer leaves."""
        for effect in effects:
            if isinstance(effect, SaveAlert):
                await self.store.alerts.put(device.device_id, effect.payload,
                                            scheduled_at=effect.scheduled_at,
                                            dialog_request_id=event.header.dialog_request_id,
                                            repeat_days=effect.repeat_days)
            elif isinstance(effect, MarkAlert):
                await self.store.alerts.set_status(device.device_id, effect.token, effect.status)
            else:  # pragma: no cover - a capability bug, caught by its unit tests
                raise TypeError(f"unknown effect {effect!r}")

    async def remember_context(self, event: Event, device: DeviceContext) -> None:
        if not event.context:
            return
        doc = [{"header": {"namespace": c.namespace, "name": c.name}, "payload": c.payload}
               for c in event.context]
        raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        if self._context_seen.get(device.device_id) == digest:
            self._context_seen.move_to_end(device.device_id)
            return
        await self.store.device_state.put(device.device_id, doc)
        self._context_seen[device.device_id] = digest
        self._context_seen.move_to_end(device.device_id)
        if len(self._context_seen) > CONTEXT_MEMORY:
            self._context_seen.popitem(last=False)

    # ------------------------------------------------------------------ alerts

    async def _set_succeeded(self, event: Event, device: DeviceContext) -> Reply:
        ref = _alert_ref(event)
        alert = await self.store.alerts.get(device.device_id, ref[0])
        if alert is None or alert.status != "requested":
            # An alert we did not send (or already forgot), or one already confirmed
            # (a repeating alarm moved on to its next occurrence): nothing to say.
            return Reply()
        await self.store.alerts.set_status(device.device_id, alert.token, "set")
        lang = self.language_of(device.device_id)
        words, template = confirmation(alert.payload, self.clock(), locale_for(lang),
                                       alert.repeat_days)
        response = IntentResponse(words, None, (template,) if template is not None else ())
        # The event carries no dialogRequestId (B-EV-06); the confirmation continues the
        # dialogue that asked for the alert, so a device plays it only if that request
        # is still the latest one (B-DI-04).
        return await self.render(response, event.header.dialog_request_id or alert.dialog_request_id,
                                 lang)

    async def _set_failed(self, event: Event, device: DeviceContext) -> Reply:
        ref = _alert_ref(event)
        alert = await self.store.alerts.get(device.device_id, ref[0])
        if alert is None:
            return Reply()
        await self.store.alerts.remove(device.device_id, ref[0])
        log.info("device could not set an alert", extra={"device": device.device_id, "token": ref[0]})
        lang = self.language_of(device.device_id)
        return await self.render(IntentResponse.say(failure(ref[1], locale_for(lang))),
                                 event.header.dialog_request_id or alert.dialog_request_id, lang)

    async def _request_stop(self, event: Event, device: DeviceContext) -> Reply:
        ref = _alert_ref(event)
        stop = Directive.create("Alerts", "StopAlert", {"token": ref[0], "type": ref[1]})
        return await self.render(IntentResponse.act(stop), event.header.dialog_request_id)

    async def _stopped(self, event: Event, device: DeviceContext) -> Reply:
        ref = _alert_ref(event)
        alert = await self.store.alerts.get(device.device_id, ref[0])
        if alert is None:
            return Reply()
        if alert.repeat_days and alert.type == ALARM:
            return await self._next_occurrence(alert, alert.repeat_days, event)
        await self.store.alerts.set_status(device.device_id, ref[0], "deleting")
        delete = Directive.create("Alerts", "DeleteAlert", {"token": ref[0], "type": ref[1]})
        return await self.render(IntentResponse.act(delete), event.header.dialog_request_id)

    async def _next_occurrence(self, alert: Alert, days: str, event: Event) -> Reply:
        """B-AL-09/10: the same token, moved to the next day it repeats on, at the same
        local time; stored (still confirmed) before the SetAlert leaves."""
        now = self.clock()
        rang = parse_wire_time(alert.payload.get("scheduledTime"))
        local = (rang or now).astimezone(now.tzinfo)
        when = next_on_days(local.hour, local.minute, days, max(now, local))
        payload = {**alert.payload, "scheduledTime": wire_time(when)}
        await self.store.alerts.put(alert.device_id, payload, scheduled_at=when.timestamp(),
                                    status="set", dialog_request_id=alert.dialog_request_id,
                                    repeat_days=days)
        again = Directive.create("Alerts", "SetAlert", payload)
        return await self.render(IntentResponse.act(again), event.header.dialog_request_id)

    async def _deleted(self, event: Event, device: DeviceContext) -> Reply:
        ref = _alert_ref(event)
        await self.store.alerts.remove(device.device_id, ref[0])
        return Reply()

    async def _delete_failed(self, event: Event, device: DeviceContext) -> Reply:
        ref = _alert_ref(event)
        # Still on the device: keep it listed, so a sync restores agreement.
        await self.store.alerts.set_status(device.device_id, ref[0], "set")
        return Reply()

    async def _all_alerts(self, device: DeviceContext) -> list[Any]:
        if device.guest:
            return []
        return [a.payload for a in await self.store.alerts.list(device.device_id)]

    async def _synchronize(self, event: Event, device: DeviceContext) -> Reply:
        sync = Directive.create("Alerts", "SynchronizeAlert",
                                {"allAlerts": await self._all_alerts(device)})
        return await self.render(IntentResponse.act(sync), event.header.dialog_request_id)

    async def _synchronize_state(self, event: Event, device: DeviceContext) -> Reply:
        sync = Directive.create("System", "SynchronizeState",
                                {"allAlerts": await self._all_alerts(device)})
        return await self.render(IntentResponse.act(sync), event.header.dialog_request_id)

    # ------------------------------------------------------------------ settings

    async def _settings_report(self, event: Event, device: DeviceContext) -> Reply:
        configuration = event.payload.get("configuration")
        if not isinstance(configuration, dict):
            raise BadRequest("Settings.Report needs payload.configuration: an object of "
                             "setting keys to string values (B-SE-02)")
        # B-SE-06: every value is a string; a lenient server stores what it can read.
        values = {str(k): v if isinstance(v, str) else json.dumps(v)
                  for k, v in configuration.items() if isinstance(k, str) and k}
        await self.store.settings.put(device.device_id, values)
        return Reply()  # 204 (B-EV-03): a report needs no answer
