"""The SDK's Alerts side (client/alerts.py, B-AL-02..13) against the real server: a
timer set by voice request is confirmed, rings, is stopped by the button, deleted, and
a fresh device gets it back by synchronising."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from support.server import ServerHandle

from opencic.client import CICClient, QueuedDirective
from opencic.client.alerts import DeviceAlerts
from opencic.client.models import default_context


def test_timer_is_confirmed_rings_stops_and_is_deleted(cic_server: ServerHandle) -> None:
    device_id = f"sdk-alerts-{uuid.uuid4().hex[:8]}"
    token = cic_server.create_token(device_id)

    async def main() -> None:
        rung: list[dict[str, Any]] = []
        alerts = DeviceAlerts(on_ring=rung.append)
        client = CICClient(cic_server.url, token, context_provider=alerts.with_context(default_context))
        alerts.attach(client)
        seen: list[str] = []
        client.on("*", lambda item: seen.append(item.directive.qualified_name))
        templates: list[QueuedDirective] = []
        client.on("Clova.RenderTemplate", templates.append)
        async with client:
            answer = await client.recognize_text("set a timer for 3 seconds")
            assert [d.qualified_name for d in answer.directives] == ["Alerts.SetAlert"]
            await client.wait_idle(30)
            (alert_token,) = alerts.alerts
            # B-AL-03: the confirmation came back for the original dialogue and played.
            assert [t.directive.payload["type"] for t in templates] == ["Timer"]
            assert "SpeechSynthesizer.Speak" in seen
            ctx = alerts.context().payload
            assert [a["token"] for a in ctx["allAlerts"]] == [alert_token]
            assert ctx["activeAlerts"] == [] or rung  # active only once it rang

            for _ in range(60):  # rings at its scheduled time (B-AL-05)
                if rung:
                    break
                await asyncio.sleep(0.1)
            assert [r["token"] for r in rung] == [alert_token]
            assert [a["token"] for a in alerts.context().payload["activeAlerts"]] == [alert_token]

            await alerts.request_stop(alert_token)  # B-AL-06 -> StopAlert -> AlertStopped
            for _ in range(50):  # -> DeleteAlert (B-AL-09) -> DeleteAlertSucceeded
                if not alerts.alerts:
                    break
                await asyncio.sleep(0.1)
            assert alerts.alerts == {} and alerts.ringing == set()
        alerts.close()

    asyncio.run(asyncio.wait_for(main(), 90))


def test_synchronize_restores_the_servers_alerts(cic_server: ServerHandle) -> None:
    device_id = f"sdk-sync-{uuid.uuid4().hex[:8]}"
    token = cic_server.create_token(device_id)

    async def main() -> None:
        first = DeviceAlerts()
        client = CICClient(cic_server.url, token, context_provider=first.with_context(default_context))
        first.attach(client)
        async with client:
            await client.recognize_text("set an alarm for 6 am")
            await client.wait_idle(30)
        first.close()
        assert len(first.alerts) == 1

        # A reset device (B-AL-13): empty, then synchronised from the server.
        again = DeviceAlerts()
        client = CICClient(cic_server.url, token, context_provider=again.with_context(default_context))
        again.attach(client)
        async with client:
            await again.synchronize()
            await client.wait_idle(30)
        again.close()
        assert again.alerts == first.alerts

    asyncio.run(asyncio.wait_for(main(), 90))
