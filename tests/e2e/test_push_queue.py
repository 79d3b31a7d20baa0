"""Store-and-forward and per-user targeting of operator pushes (issue 3): directives
for an offline device are kept (``queueSeconds``) and follow Clova.Hello on its next
downchannel (B-DC-02), once; ``users`` reaches exactly that user's devices."""

from __future__ import annotations

import asyncio
import uuid

from support.server import ServerHandle
from test_push import admin_push, admin_token, downchannel, names

from opencic.state.base import Store

CLEAR = {"namespace": "Notifier", "name": "ClearIndicator", "payload": {}}
EXPECT_REPORT = {"namespace": "Settings", "name": "ExpectReport", "payload": {}}


async def next_downchannel(server: ServerHandle, device_id: str) -> list[str]:
    """What a new downchannel of the device carries in its first half second."""
    client, sid = await downchannel(server, device_id)
    try:
        await asyncio.sleep(0.5)
        return names(client, sid)
    finally:
        await client.close()


def test_offline_device_gets_queued_directives_after_hello_once(cic_server: ServerHandle) -> None:
    device_id = f"queue-{uuid.uuid4().hex[:8]}"
    cic_server.create_token(device_id)  # the device exists, but is offline

    async def go() -> None:
        admin = await cic_server.connect()
        token = admin_token(cic_server)
        try:
            status, result = await admin_push(admin, token, {
                "devices": [device_id, "never-registered"], "directives": [CLEAR],
                "queueSeconds": 600})
            # An unknown device cannot be queued for: it is only reported offline.
            assert status == 200
            assert result == {"delivered": 0, "offline": [device_id, "never-registered"],
                              "queued": [device_id]}
            status, result = await admin_push(admin, token, {
                "devices": [device_id], "directives": [EXPECT_REPORT], "queueSeconds": 600})
            assert result["queued"] == [device_id]
            # Not queued (no queueSeconds): a live-only push is dropped for offline devices.
            await admin_push(admin, token, {"devices": [device_id], "directives": [CLEAR]})

            client, sid = await downchannel(cic_server, device_id)
            try:
                await client.wait(sid, lambda s: len(names(client, sid)) >= 3, timeout=5)
                await asyncio.sleep(0.3)
                assert names(client, sid) == ["Clova.Hello", "Notifier.ClearIndicator",
                                              "Settings.ExpectReport"]
            finally:
                await client.close()
            # Delivered once: the next downchannel gets only Hello.
            assert await next_downchannel(cic_server, device_id) == ["Clova.Hello"]
        finally:
            await admin.close()

    asyncio.run(go())


def test_queued_directives_expire(cic_server: ServerHandle) -> None:
    device_id = f"expire-{uuid.uuid4().hex[:8]}"
    cic_server.create_token(device_id)

    async def go() -> None:
        admin = await cic_server.connect()
        try:
            _status, result = await admin_push(admin, admin_token(cic_server), {
                "devices": [device_id], "directives": [CLEAR], "queueSeconds": 0.5})
            assert result["queued"] == [device_id]
            await asyncio.sleep(1.0)
            assert await next_downchannel(cic_server, device_id) == ["Clova.Hello"]
        finally:
            await admin.close()

    asyncio.run(go())


def test_push_to_a_user_reaches_only_their_devices(cic_server: ServerHandle) -> None:
    tag = uuid.uuid4().hex[:8]

    async def setup(store: Store) -> dict[str, str]:
        tokens = {}
        for who, devices in (("carol", ("kitchen", "bedroom")), ("dave", ("office",))):
            user = await store.users.add(f"{who}-{tag}", "pw")
            for name in devices:
                device_id = f"{who}-{tag}-{name}"
                await store.devices.register(device_id, user_id=user.user_id)
                tokens[device_id] = (await store.tokens.issue(
                    device_id, ttl=600, user_id=user.user_id)).access_token
        return tokens

    cic_server.with_store(setup)
    carol = [f"carol-{tag}-kitchen", f"carol-{tag}-bedroom"]
    dave = f"dave-{tag}-office"

    async def go() -> None:
        admin = await cic_server.connect()
        channels = {d: await downchannel(cic_server, d) for d in [carol[0], dave]}
        try:
            status, result = await admin_push(admin, admin_token(cic_server), {
                "users": [f"carol-{tag}"], "directives": [CLEAR], "queueSeconds": 60})
            assert status == 200
            assert result == {"delivered": 1, "offline": [carol[1]], "queued": [carol[1]]}
            client, sid = channels[carol[0]]
            await client.wait(sid, lambda s: "Notifier.ClearIndicator" in names(client, sid), timeout=5)
            await asyncio.sleep(0.3)
            other, other_sid = channels[dave]
            assert names(other, other_sid) == ["Clova.Hello"]  # another user's device: nothing

            status, result = await admin_push(admin, admin_token(cic_server), {
                "users": ["no-such-user"], "directives": [CLEAR]})
            assert status == 400 and "no such user" in result["error"]["description"]
            for bad in ({"devices": "all", "users": [f"carol-{tag}"], "directives": [CLEAR]},
                        {"devices": "all", "directives": [CLEAR], "queueSeconds": 5},
                        {"devices": [dave], "directives": [CLEAR], "queueSeconds": -1},
                        {"devices": [dave], "directives": [CLEAR], "queueSeconds": "5"},
                        {"users": "carol", "directives": [CLEAR]}):
                status, result = await admin_push(admin, admin_token(cic_server), bad)
                assert status == 400, bad
        finally:
            for client, _ in channels.values():
                await client.close()
            await admin.close()

    asyncio.run(go())
