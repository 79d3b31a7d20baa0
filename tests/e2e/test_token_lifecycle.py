"""A downchannel lives only as long as its access token (issue 3, B-CN-04/05): revoked
elsewhere (CLI, store), expired, or its user removed -> the stream is ended and the
device's next request gets 401. Against the real server, sweep every 0.3 s."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cic import auth_headers, exception_of
from support.rawh2 import RawH2
from support.server import ServerHandle, serving

from opencic.state.base import Store

SWEEP = 0.3


@pytest.fixture(scope="module")
def sweeping_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with serving(tmp_path_factory.mktemp("sweep"),
                          env={"OPENCIC_TOKEN_SWEEP_SECONDS": str(SWEEP)}) as handle:
        yield handle


async def _open(server: ServerHandle, token: str) -> tuple[RawH2, int]:
    client = await server.connect()
    sid = await client.start("GET", "/v1/directives", auth_headers(token), end=True)
    await client.wait(sid, lambda s: b"Hello" in s.body)
    return client, sid


async def _ended_within(client: RawH2, sid: int, seconds: float) -> float:
    started = time.monotonic()
    st = await client.wait(sid, lambda s: s.ended, timeout=seconds)
    assert st.headers.get(":status") == "200"
    # Ended cleanly: the multipart closing delimiter, not a reset.
    assert bytes(st.body).rstrip().endswith(b"--")
    return time.monotonic() - started


async def _refused(server: ServerHandle, token: str) -> None:
    client = await server.connect()
    try:
        resp = await client.request("GET", "/v1/directives", auth_headers(token))
        assert resp.status == 401
        assert exception_of(resp)["code"] == 401
    finally:
        await client.close()


def test_revocation_from_another_process_closes_the_downchannel(
        sweeping_server: ServerHandle) -> None:
    token = sweeping_server.create_token(f"rev-{uuid.uuid4().hex[:8]}")

    async def go() -> None:
        client, sid = await _open(sweeping_server, token)
        try:
            await asyncio.sleep(SWEEP * 2)
            assert not client.streams[sid].ended  # a live token keeps its stream
            assert sweeping_server.revoke_token(token)  # as `opencic token revoke` does
            took = await _ended_within(client, sid, 5.0)
            assert took < SWEEP + 2.0
        finally:
            await client.close()
        await _refused(sweeping_server, token)

    asyncio.run(go())


def test_expiry_closes_the_downchannel(sweeping_server: ServerHandle) -> None:
    token = sweeping_server.create_token(f"exp-{uuid.uuid4().hex[:8]}", expires_in=1.5)

    async def go() -> None:
        client, sid = await _open(sweeping_server, token)
        try:
            await _ended_within(client, sid, 6.0)
        finally:
            await client.close()
        await _refused(sweeping_server, token)

    asyncio.run(go())


def test_removing_the_user_closes_their_devices_downchannels(
        sweeping_server: ServerHandle) -> None:
    name = f"u{uuid.uuid4().hex[:8]}"

    async def setup(store: Store) -> tuple[str, str, str]:
        user = await store.users.add(name, "pw-" + name)
        other = await store.users.add(name + "x", "pw-other")
        tokens = []
        for owner, device in ((user.user_id, f"{name}-a"), (other.user_id, f"{name}-b")):
            await store.devices.register(device, user_id=owner)
            tokens.append((await store.tokens.issue(device, ttl=3600, user_id=owner)).access_token)
        return user.user_id, tokens[0], tokens[1]

    user_id, mine, theirs = sweeping_server.with_store(setup)

    async def remove(store: Store) -> bool:
        return await store.users.remove(user_id)

    async def go() -> None:
        client, sid = await _open(sweeping_server, mine)
        other, other_sid = await _open(sweeping_server, theirs)
        try:
            assert sweeping_server.with_store(remove)
            await _ended_within(client, sid, 5.0)
            await asyncio.sleep(SWEEP * 3)
            assert not other.streams[other_sid].ended  # another user's device is untouched
        finally:
            await client.close()
            await other.close()
        await _refused(sweeping_server, mine)

    asyncio.run(go())


def test_sweep_setting_is_validated(tmp_path: Path) -> None:
    from opencic.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="token_sweep_seconds"):
        load_settings(env={"OPENCIC_TOKEN_SWEEP_SECONDS": "-1"})
