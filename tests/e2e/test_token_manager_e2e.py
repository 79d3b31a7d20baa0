"""TokenManager with a token file against the real auth API of ``opencic serve`` (a
refresh token works once there): every new pair is on disk before it is used, a pair
that could not be saved is never traded for the older one on disk, managers sharing a
file refresh once between them, logout refreshes an expired token first and removes
the file, and the background refresh at half-life (B-CN-05).

The one injected fault is the disk refusing a write (``TokenFile.save`` raising)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cic import auth_headers
from support.server import ServerHandle, serving
from test_auth_login import MODEL, PREFIX, Account, device

from opencic.client.auth import AuthAPIError, TokenManager, request_code
from opencic.client.tokenstore import SavedTokens, TokenFile, TokenFileError
from opencic.state.base import Store

SHORT_TTL = 2  # seconds an access token lives on the short-lived server


@pytest.fixture(scope="module")
def short_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with serving(tmp_path_factory.mktemp("short-tokens"), env={
        "OPENCIC_TOKEN_TTL_SECONDS": str(SHORT_TTL), "OPENCIC_TOKEN_CACHE_SECONDS": "0",
        "OPENCIC_AUTH_TOKEN_MAX_REQUESTS": "1000"}) as handle:
        yield handle


class Device:
    """A registered product, its user and one device id on ``server``."""

    def __init__(self, server: ServerHandle) -> None:
        self.server, self.account, self.id = server, Account(server), device()
        self.url = server.url + PREFIX

    def manager(self, path: Path, **kw: Any) -> TokenManager:
        return TokenManager(self.url, self.account.client_id, self.account.secret, self.id,
                            MODEL, store=TokenFile(path), **kw)

    async def code(self) -> str:
        doc = await request_code(self.url, client_id=self.account.client_id, device_id=self.id,
                                 model_id=MODEL, state="s", account_token=self.account.account_token)
        return str(doc["code"])

    def pairs_issued(self) -> int:
        async def count(store: Store) -> int:
            rows = await store.driver.fetch(  # type: ignore[attr-defined]
                "SELECT COUNT(*) FROM tokens WHERE device_id = ?", self.id)
            return int(rows[0][0])

        return self.server.with_store(count)

    async def accepted(self, access_token: str) -> bool:
        client = await self.server.connect()
        try:
            resp = await client.request("GET", "/v1/directives", auth_headers(access_token), timeout=5)
            return resp.status == 200
        except TimeoutError:  # a 200 downchannel never ends: accepted
            return True
        finally:
            await client.close()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_each_new_pair_is_on_disk_before_anyone_sees_it(backend_server: ServerHandle,
                                                        tmp_path: Path) -> None:
    dev = Device(backend_server)
    path = tmp_path / "tokens.json"
    seen_on_disk: list[SavedTokens | None] = []
    m = dev.manager(path, on_update=lambda t: seen_on_disk.append(TokenFile(path).load()))
    assert m.tokens is None

    async def go() -> tuple[Any, Any]:
        first = await m.exchange_code(await dev.code())
        second = await m.refresh()
        assert [s.tokens if s else None for s in seen_on_disk] == [first, second]
        return first, second

    first, second = run(go())
    assert first.access_token != second.access_token
    # A new manager (a restart) starts from the file, with no new code.
    again = dev.manager(path)
    assert again.tokens is not None and again() == second.access_token
    assert dev.pairs_issued() == 2
    # A file made for another device (or client, or model) is refused, not used.
    with pytest.raises(TokenFileError, match=f"device_id='{dev.id}'"):
        TokenManager(dev.url, dev.account.client_id, "x", "bedroom", MODEL, store=TokenFile(path))
    with pytest.raises(ValueError, match="not both"):
        TokenManager(dev.url, "c", "s", "d", refresh_token="r", store=TokenFile(path))


def test_a_pair_that_could_not_be_saved_is_kept_and_saved_before_use(
        backend_server: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The refresh rotated the pair on the server, then the disk refused it: the old
    pair in the file is dead, so the new one must neither be lost nor handed out
    unsaved; the next ensure_fresh() writes it first."""
    dev = Device(backend_server)
    path = tmp_path / "tokens.json"
    m = dev.manager(path)
    real_save = TokenFile.save

    def disk_full(self: TokenFile, saved: SavedTokens) -> None:
        raise TokenFileError(f"cannot write the token file {self.path}: No space left")

    async def go() -> None:
        first = await m.exchange_code(await dev.code())
        monkeypatch.setattr(TokenFile, "save", disk_full)
        with pytest.raises(TokenFileError):
            await m.refresh()
        rotated = m()
        assert rotated != first.access_token  # the only live pair, kept in memory
        assert TokenFile(path).load().tokens.access_token == first.access_token  # type: ignore[union-attr]
        assert not await dev.accepted(first.access_token)  # the server rotated it away
        with pytest.raises(TokenFileError):
            await m.ensure_fresh()  # still cannot save: not handed out
        monkeypatch.setattr(TokenFile, "save", real_save)
        assert await m.ensure_fresh() == rotated  # saved first, not replaced by the file's
        assert TokenFile(path).load().tokens.access_token == rotated  # type: ignore[union-attr]
        assert await dev.accepted(rotated)

    run(go())
    assert dev.pairs_issued() == 2  # the code, one refresh: nothing spent twice


def test_managers_sharing_a_file_refresh_once_and_follow_each_other(
        short_server: ServerHandle, tmp_path: Path) -> None:
    """Two processes (two managers, two TokenFile objects) on one file."""
    dev = Device(short_server)
    path = tmp_path / "tokens.json"
    a = dev.manager(path)

    async def go() -> None:
        first = await a.exchange_code(await dev.code())
        b = dev.manager(path)
        # a refreshes; b still sends the old access token, gets a 401, and takes a's
        # new pair from the file instead of spending its dead refresh token.
        await a.refresh()
        assert await b.unauthorized(first.access_token) is True
        assert b() == a() != first.access_token
        assert dev.pairs_issued() == 2
        # The pair both hold expires: one refresh between them, both get its result.
        await asyncio.sleep(SHORT_TTL + 0.3)
        tokens = await asyncio.gather(a.ensure_fresh(), b.ensure_fresh())
        assert tokens[0] == tokens[1] and await dev.accepted(tokens[0])
        assert dev.pairs_issued() == 3

    run(go())


def test_revoke_removes_the_file_and_refreshes_an_expired_token_first(
        short_server: ServerHandle, tmp_path: Path) -> None:
    dev = Device(short_server)
    path = tmp_path / "tokens.json"
    m = dev.manager(path)

    async def go() -> None:
        first = await m.exchange_code(await dev.code())
        await asyncio.sleep(SHORT_TTL + 0.3)  # the server refuses to delete an expired token
        doc = await m.revoke()
        assert doc["access_token"] != first.access_token  # refreshed, then deleted
        assert not await dev.accepted(doc["access_token"])
        assert m.tokens is None and not path.exists()
        with pytest.raises(AuthAPIError, match="no access token"):
            await m.revoke()

    run(go())
    assert dev.pairs_issued() <= 2  # (the server may purge the deleted pair)


def test_short_lived_tokens_are_renewed_at_half_life_in_the_background(
        short_server: ServerHandle, tmp_path: Path) -> None:
    dev = Device(short_server)
    path = tmp_path / "tokens.json"
    m = dev.manager(path)  # refresh_margin 60 s: capped to half the 2 s lifetime

    async def go() -> None:
        first = await m.exchange_code(await dev.code())
        # Just issued: not refreshed before each request although it lives < 60 s.
        assert await m.ensure_fresh() == first.access_token
        started = time.monotonic()
        task = asyncio.create_task(m.keep_fresh())
        while m.refreshes < 2:
            assert time.monotonic() - started < 15, "no background refresh"
            await asyncio.sleep(0.02)
        # At half-life, about a second apart: neither late nor spinning.
        assert time.monotonic() - started >= 1.5
        assert TokenFile(path).load().tokens.access_token == m()  # type: ignore[union-attr]
        assert await dev.accepted(m())

        # The refresh token refused (a logout elsewhere revoked the device's pairs):
        # keep_fresh ends instead of looping.
        async def revoke_all(store: Store) -> int:
            return await store.tokens.revoke_device(dev.id)

        await asyncio.to_thread(short_server.with_store, revoke_all)
        await asyncio.wait_for(task, SHORT_TTL + 5)

    run(go())
