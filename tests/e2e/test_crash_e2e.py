"""Nothing acknowledged is lost (issue 3): the server is killed with SIGKILL in the middle
of a stream of alert creations and settings reports from two devices; after a restart
every acknowledged alert and setting is there, and devices, users and tokens still work.
Both back ends."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

from support.cic import (
    CONTENT_TYPE,
    auth_headers,
    event_body,
    event_json,
    open_downchannel,
    read_parts,
)
from support.rawh2 import RawH2
from support.server import kill_server, start_server, stop_server

from opencic.state.base import Store

ACKS_BEFORE_KILL = 80
DEVICES = 2


async def _post(client: RawH2, token: str, namespace: str, name: str,
                payload: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    doc = event_json(namespace, name, payload, str(uuid.uuid4()))
    resp = await client.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE),
                                event_body(doc), timeout=10)
    if resp.status != 200:
        return resp.status, []
    parts, _ = read_parts(resp.headers["content-type"], resp.body)
    return 200, [p.directive for p in parts if "json" in p.headers.get("content-type", "")]


def test_acknowledged_alerts_and_settings_survive_sigkill(
        database: tuple[str, Path], tmp_path: Path) -> None:
    db, _ = database
    env = {"OPENCIC_DATABASE": db} if db else {}
    data_dir = tmp_path / "data"
    server = start_server(data_dir, env=env)
    tag = uuid.uuid4().hex[:6]

    async def setup(store: Store) -> list[tuple[str, str]]:
        user = await store.users.add(f"crash-{tag}", "pw")
        out = []
        for i in range(DEVICES):
            device_id = f"crash-{tag}-{i}"
            await store.devices.register(device_id, user_id=user.user_id)
            out.append((device_id, (await store.tokens.issue(
                device_id, ttl=3600, user_id=user.user_id)).access_token))
        return out

    devices = server.with_store(setup)
    acked_alerts: dict[str, dict[str, Any]] = {}  # token -> payload, per device below
    alert_owner: dict[str, str] = {}
    acked_settings: dict[str, dict[str, str]] = {d: {} for d, _ in devices}
    enough = asyncio.Event()

    async def device_loop(device_id: str, token: str) -> None:
        client = await server.connect()
        try:
            await open_downchannel(client, token)
            i = 0
            while True:
                i += 1
                if i % 2:
                    hour, minute = 1 + i % 12, i % 60
                    status, directives = await _post(client, token, "TextRecognizer", "Recognize",
                                                     {"text": f"set an alarm for {hour}:{minute:02d} pm"})
                    assert status == 200, status
                    payload = directives[0]["payload"]
                    acked_alerts[payload["token"]] = payload
                    alert_owner[payload["token"]] = device_id
                else:
                    key, value = f"k{i}", f"v{i}-{device_id}"
                    status, _ = await _post(client, token, "Settings", "Report",
                                            {"configuration": {key: value}})
                    assert status == 204, status
                    acked_settings[device_id][key] = value
                if len(acked_alerts) + sum(map(len, acked_settings.values())) >= ACKS_BEFORE_KILL:
                    enough.set()
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    async def crash() -> None:
        tasks = [asyncio.create_task(device_loop(d, t)) for d, t in devices]
        await asyncio.wait_for(enough.wait(), 120)
        # Requests are in flight on both devices right now.
        kill_server(server)
        for task in tasks:
            with contextlib.suppress(Exception):
                await task
        assert all(t.done() for t in tasks)

    try:
        asyncio.run(crash())
        assert len(acked_alerts) >= ACKS_BEFORE_KILL // 2 - DEVICES
        restarted = start_server(data_dir, env=env, port=server.port)
    finally:
        stop_server(server)
    try:
        async def read(store: Store) -> tuple[dict[str, set[str]], dict[str, dict[str, str]]]:
            alerts = {d: {a.token for a in await store.alerts.list(d)} for d, _ in devices}
            settings = {d: await store.settings.get_all(d) for d, _ in devices}
            return alerts, settings

        stored_alerts, stored_settings = restarted.with_store(read)
        for alert_token, owner in alert_owner.items():
            assert alert_token in stored_alerts[owner]
        for device_id, values in acked_settings.items():
            assert values.items() <= stored_settings[device_id].items()

        # Devices, users and tokens survived too: the old token still works, and the
        # device's sync lists every acknowledged alert (B-AL-14).
        async def sync() -> None:
            device_id, token = devices[0]
            client = await restarted.connect()
            try:
                await open_downchannel(client, token)
                status, directives = await _post(client, token, "Alerts", "RequestSynchronizeAlert", {})
                assert status == 200
                listed = {a["token"]: a for a in directives[0]["payload"]["allAlerts"]}
                for alert_token, owner in alert_owner.items():
                    if owner == device_id:
                        assert listed[alert_token] == acked_alerts[alert_token]
            finally:
                await client.close()

        asyncio.run(sync())
    finally:
        stop_server(restarted)
