"""Pushing directives down live downchannels through the operator API (B-DC-02, B-DC-08,
B-DC-09, B-OT-01), against the real server."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from support.cic import auth_headers, read_parts
from support.rawh2 import RawH2
from support.server import ServerHandle

SET_INDICATOR = {
    "namespace": "Notifier",
    "name": "SetIndicator",
    "payload": {
        "assets": [{"assetId": "a1", "url": "clova://notifier/sound/default"}],
        "assetPlayOrder": ["a1"],
        "light": "DEFAULT",
        "new": True,
    },
}


def admin_token(server: ServerHandle) -> str:
    return (server.data_dir / "admin.token").read_text().strip()


async def admin_push(client: RawH2, token: str, doc: Any) -> tuple[int, Any]:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    resp = await client.request("POST", "/admin/v1/push", headers, body)
    return resp.status, json.loads(resp.body)


async def downchannel(server: ServerHandle, device_id: str) -> tuple[RawH2, int]:
    client = await server.connect()
    sid = await client.start("GET", "/v1/directives", auth_headers(server.create_token(device_id)), end=True)
    await client.wait(sid, lambda s: b"Hello" in s.body)
    return client, sid


def names(client: RawH2, sid: int) -> list[str]:
    st = client.streams[sid]
    parts, _ = read_parts(st.headers["content-type"], bytes(st.body), st.ended)
    return [p.qualified_name for p in parts]


def test_push_reaches_an_idle_downchannel_at_once(cic_server: ServerHandle) -> None:
    device_id = f"push-{uuid.uuid4().hex[:8]}"

    async def go() -> None:
        client, sid = await downchannel(cic_server, device_id)
        admin = await cic_server.connect()
        try:
            await asyncio.sleep(2.0)  # idle first: the stream must stay writable
            status, result = await admin_push(admin, admin_token(cic_server), {"devices": [device_id], "directives": [SET_INDICATOR]})
            assert status == 200 and result == {"delivered": 1, "offline": [], "queued": []}
            await client.wait(sid, lambda s: len(names(client, sid)) == 2, timeout=5)
            st = client.streams[sid]
            parts, _ = read_parts(st.headers["content-type"], bytes(st.body), False)
            pushed = parts[1].directive
            assert pushed["header"]["name"] == "SetIndicator"
            assert "dialogRequestId" not in pushed["header"]  # B-DC-08
            assert pushed["payload"] == SET_INDICATOR["payload"]
            assert not st.ended
        finally:
            await client.close()
            await admin.close()

    asyncio.run(go())


def test_push_to_all_and_to_offline_devices(cic_server: ServerHandle) -> None:
    online = f"push-{uuid.uuid4().hex[:8]}"

    async def go() -> None:
        client, sid = await downchannel(cic_server, online)
        admin = await cic_server.connect()
        try:
            clear = {"namespace": "Notifier", "name": "ClearIndicator", "payload": {}}
            status, result = await admin_push(admin, admin_token(cic_server), {"devices": [online, "nobody-home"], "directives": [clear]})
            assert status == 200 and result == {"delivered": 1, "offline": ["nobody-home"], "queued": []}
            status, result = await admin_push(admin, admin_token(cic_server), {"devices": "all", "directives": [clear]})
            assert status == 200 and result["delivered"] >= 1
            await client.wait(sid, lambda s: names(client, sid).count("Notifier.ClearIndicator") == 2, timeout=5)
        finally:
            await client.close()
            await admin.close()

    asyncio.run(go())


def test_push_rejects_bad_requests_clearly(cic_server: ServerHandle) -> None:
    async def go() -> None:
        admin = await cic_server.connect()
        token = admin_token(cic_server)
        try:
            status, result = await admin_push(admin, "wrong", {"devices": "all", "directives": [SET_INDICATOR]})
            assert status == 401 and "admin token" in result["error"]["description"]
            bad = {
                "invalid json": b"{",
                "no devices": {"directives": [SET_INDICATOR]},
                "no directives": {"devices": "all", "directives": []},
                "unknown directive": {"devices": "all", "directives": [{"namespace": "Foo", "name": "Bar"}]},
                "response-only directive": {"devices": "all", "directives": [{"namespace": "Clova", "name": "RenderText", "payload": {"text": "x"}}]},
                "server-owned directive": {"devices": "all", "directives": [{"namespace": "Clova", "name": "Hello"}]},
                "schema violation": {"devices": "all", "directives": [{**SET_INDICATOR, "payload": {"light": "BLINK"}}]},
            }
            for label, doc in bad.items():
                status, result = await admin_push(admin, token, doc)
                assert status == 400, label
                assert result["error"]["code"] == 400 and result["error"]["description"], label
        finally:
            await admin.close()

    asyncio.run(go())


def test_a_device_that_goes_away_is_offline(cic_server: ServerHandle) -> None:
    """Connection loss ends the downchannel on the server too: pushes report it offline,
    and a stream reset by the device does the same."""
    async def go() -> None:
        admin = await cic_server.connect()
        try:
            for how in ("close connection", "reset stream"):
                device_id = f"gone-{uuid.uuid4().hex[:8]}"
                client, sid = await downchannel(cic_server, device_id)
                if how == "reset stream":
                    await client.reset(sid)
                    await asyncio.sleep(0.3)
                    await client.close()
                else:
                    await client.close()
                clear = {"namespace": "Notifier", "name": "ClearIndicator", "payload": {}}
                for _ in range(50):
                    status, result = await admin_push(admin, admin_token(cic_server), {"devices": [device_id], "directives": [clear]})
                    if result["offline"] == [device_id]:
                        break
                    await asyncio.sleep(0.1)
                assert status == 200 and result == {"delivered": 0, "offline": [device_id], "queued": []}, how
        finally:
            await admin.close()

    asyncio.run(go())
