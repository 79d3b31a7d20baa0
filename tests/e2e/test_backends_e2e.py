"""The server end to end on each state back end: SQLite in the data dir and PostgreSQL
(``OPENCIC_DATABASE=postgresql://…``). Same tests, same assertions."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from support import pg
from support.backend import BACKENDS
from support.cic import (
    CONTENT_TYPE,
    auth_headers,
    event_body,
    event_json,
    exception_of,
    open_downchannel,
    read_parts,
)
from support.rawh2 import RawH2
from support.server import ServerHandle, kill_server, start_server, stop_server


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def device() -> str:
    return f"be-{uuid.uuid4().hex[:12]}"


async def ask_time(client: RawH2, token: str) -> list[str]:
    dialog = str(uuid.uuid4())
    body = event_body(event_json("TextRecognizer", "Recognize", {"text": "what time is it"}, dialog))
    resp = await client.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
    assert resp.status == 200, resp.body[:300]
    parts, closed = read_parts(resp.headers["content-type"], resp.body)
    assert closed
    json_parts = [p for p in parts if p.headers.get("content-type", "").startswith("application/json")]
    assert all(p.directive["header"]["dialogRequestId"] == dialog for p in json_parts)
    return [p.qualified_name for p in json_parts]


async def answered_on_new_connection(server: ServerHandle, token: str) -> None:
    """A fresh connection opens a downchannel with ``token``; "what time is it" is answered."""
    client = await server.connect()
    try:
        await open_downchannel(client, token)
        assert await ask_time(client, token) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
    finally:
        await client.close()


def test_text_round_trip(backend_server: ServerHandle) -> None:
    """A token from the back end's store opens a downchannel; a text request is answered."""
    run(answered_on_new_connection(backend_server, backend_server.create_token(device())))


def test_revoked_and_expired_tokens_get_401(backend_server: ServerHandle) -> None:
    """B-CN-04: an expired token is refused at once; a token revoked from outside the
    server (as the CLI does) is refused within token_cache_seconds (1 s here)."""
    live = backend_server.create_token(device())
    expired = backend_server.create_token(device(), 60, now=0.0)
    finished = event_body(event_json("SpeechSynthesizer", "SpeechFinished", {"token": "t"}))

    async def go() -> None:
        client = await backend_server.connect()
        try:
            sid = await open_downchannel(client, live)
            assert client.streams[sid].status == 200
            resp = await client.request("GET", "/v1/directives", auth_headers(expired))
            assert resp.status == 401
            assert "revoked or expired" in exception_of(resp)["description"]
            assert backend_server.revoke_token(live)
            revoked_at = time.monotonic()
            while True:
                resp = await client.request("POST", "/v1/events", auth_headers(live, CONTENT_TYPE), finished)
                if resp.status == 401:
                    break
                assert resp.status == 204
                assert time.monotonic() - revoked_at < 1.0 + 1.0, "revocation not seen in time"
                await asyncio.sleep(0.05)
            assert "revoked or expired" in exception_of(resp)["description"]
        finally:
            await client.close()
    run(go())


def test_database_fault_is_500_then_recovers(backend_server: ServerHandle) -> None:
    """B-EV-04 on each back end: the token table disappears under the running server
    (a real fault, not a mock) -> 500 with a trace id; once it is back, 200 again."""
    token = backend_server.create_token(device())

    async def go() -> None:
        client = await backend_server.connect()
        try:
            await backend_server.execute_sql("ALTER TABLE tokens RENAME TO tokens_moved_away")
            try:
                resp = await client.request("GET", "/v1/directives", auth_headers(token))
            finally:
                await backend_server.execute_sql("ALTER TABLE tokens_moved_away RENAME TO tokens")
            assert resp.status == 500
            assert "trace" in exception_of(resp)["description"]
            sid = await open_downchannel(client, token)
            assert client.streams[sid].status == 200
        finally:
            await client.close()
    run(go())


@pytest.mark.parametrize("backend", BACKENDS)
def test_restart_keeps_devices_and_tokens(backend: str, tmp_path: Path,
                                          request: pytest.FixtureRequest) -> None:
    """Issue 3: a restart (here after SIGKILL) keeps devices and tokens."""
    env: dict[str, str] = {}
    if backend == "postgresql":
        env["OPENCIC_DATABASE"] = pg.fresh_schema(request.getfixturevalue("postgres_dsn"))
    server = start_server(tmp_path, env=env)
    dev = device()
    try:
        token = server.create_token(dev)
    finally:
        kill_server(server)
    server = start_server(tmp_path, env=env, port=server.port)
    try:
        run(answered_on_new_connection(server, token))

        async def owner(store: Any) -> Any:
            return await store.devices.get(dev)
        assert server.with_store(owner) is not None
    finally:
        stop_server(server)
