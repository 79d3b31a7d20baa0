"""The auth API (auth.md) end to end over real sockets, on both state back ends:
authorize -> token -> downchannel -> refresh -> delete, every documented error status,
query string vs form body, guest codes, the 451 terms flow, and the SDK's
TokenManager refreshing on 401 and before expiry."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import urllib.parse
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from support.cic import auth_headers, open_downchannel
from support.rawh2 import RawH2, Response
from support.server import ServerHandle, serving

from opencic.client.auth import AuthAPIError, TokenManager, TokenSet, request_code
from opencic.client.sdk import CICClient
from opencic.state.base import Store

PREFIX = "/auth/v1"
FORM = "application/x-www-form-urlencoded"
MODEL = "test-model"


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def device() -> str:
    return f"auth-{uuid.uuid4().hex[:12]}"


class Product:
    """A registered client (product) and a user with an account token."""

    def __init__(self, server: ServerHandle) -> None:
        self.client_id = f"c-{uuid.uuid4().hex[:10]}"
        self.secret = "s" + secrets.token_urlsafe(16)  # as `client add` makes: never "-…"
        self.user = f"u-{uuid.uuid4().hex[:10]}"

        async def provision(store: Store) -> str:
            await store.clients.add(self.client_id, self.secret, name="test product")
            user = await store.users.add(self.user)
            return await store.account_tokens.issue(user.user_id)

        self.account_token: str = server.with_store(provision)

    def creds(self, **extra: str) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.secret, **extra}


async def call(client: RawH2, endpoint: str, params: dict[str, str], *, form: bool = True,
               method: str = "POST", headers: dict[str, str] | None = None) -> Response:
    """``form``: parameters in the body; else in the query string (GET)."""
    path = f"{PREFIX}/{endpoint}"
    h = dict(headers or {})
    if form:
        h["content-type"] = FORM
        return await client.request(method, path, h, urllib.parse.urlencode(params).encode())
    return await client.request("GET", f"{path}?{urllib.parse.urlencode(params)}", h)


def body(resp: Response) -> dict[str, Any]:
    assert resp.headers["content-type"] == "application/json", resp.headers
    doc = json.loads(resp.body)
    assert isinstance(doc, dict)
    return doc


def error(resp: Response, status: int) -> str:
    doc = body(resp)
    assert resp.status == status, (resp.status, doc)
    assert isinstance(doc["error"], str) and doc["error_description"]
    return str(doc["error"])


async def authorize(client: RawH2, p: Product, dev: str, *, form: bool = False,
                    state: str = "st") -> str:
    resp = await call(client, "authorize", {
        "client_id": p.client_id, "device_id": dev, "model_id": MODEL,
        "response_type": "code", "state": state,
    }, form=form, headers={"authorization": f"Bearer {p.account_token}"})
    doc = body(resp)
    assert resp.status == 200, doc
    assert doc["state"] == state
    return str(doc["code"])


async def exchange(client: RawH2, p: Product, dev: str, code: str) -> dict[str, Any]:
    resp = await call(client, "token", p.creds(grant_type="authorization_code", code=code,
                                               device_id=dev, model_id=MODEL))
    doc = body(resp)
    assert resp.status == 200, doc
    return doc


def test_authorize_token_downchannel_refresh_delete(backend_server: ServerHandle) -> None:
    p = Product(backend_server)
    dev = device()

    async def go() -> None:
        client = await backend_server.connect()
        try:
            # Query string on /authorize, state URL-encoded on the way in, decoded out.
            code = await authorize(client, p, dev, form=False, state="a b&c=d/é")
            pair = await exchange(client, p, dev, code)
            assert pair["token_type"] == "Bearer"
            assert 0 < pair["expires_in"] <= 90 * 24 * 3600
            assert pair["access_token"] and pair["refresh_token"]
            # A code works once.
            again = await call(client, "token", p.creds(
                grant_type="authorization_code", code=code, device_id=dev, model_id=MODEL))
            assert error(again, 400) == "invalid_grant"
            await open_downchannel(client, pair["access_token"])

            # Refresh without device_id (ambiguity #38), parameters in the query string.
            resp = await call(client, "token", p.creds(
                grant_type="refresh_token", refresh_token=pair["refresh_token"], model_id=MODEL),
                form=False)
            new = body(resp)
            assert resp.status == 200, new
            assert new["access_token"] != pair["access_token"]
            assert new["refresh_token"] != pair["refresh_token"]
            # The old access token is refused at once (not after the token cache's TTL).
            old = await client.request("GET", "/v1/directives", auth_headers(pair["access_token"]))
            assert old.status == 401
            reused = await call(client, "token", p.creds(
                grant_type="refresh_token", refresh_token=pair["refresh_token"], model_id=MODEL))
            assert error(reused, 400) == "invalid_grant"

            # The new token opens the downchannel; delete closes it and kills the token.
            sid = await open_downchannel(client, new["access_token"])
            resp = await call(client, "token", p.creds(
                grant_type="delete", access_token=new["access_token"], device_id=dev,
                model_id=MODEL))
            doc = body(resp)
            assert resp.status == 200, doc
            assert doc["access_token"] == new["access_token"]
            assert doc["client_id"] == p.client_id
            assert 0 < doc["expires_in"] <= new["expires_in"]
            st = await client.wait(sid, lambda s: s.ended, timeout=5)
            assert st.reset is None and st.body.rstrip().endswith(b"--")  # closed cleanly
            gone = await client.request("GET", "/v1/directives", auth_headers(new["access_token"]))
            assert gone.status == 401
            # Its refresh token died with it.
            dead = await call(client, "token", p.creds(
                grant_type="refresh_token", refresh_token=new["refresh_token"], model_id=MODEL,
                device_id=dev))
            assert error(dead, 400) == "invalid_grant"
        finally:
            await client.close()

    run(go())

    async def registered(store: Store) -> Any:
        return await store.devices.get(dev)

    found = backend_server.with_store(registered)
    assert found is not None and found.client_id == p.client_id and found.model_id == MODEL
    assert found.user_id is not None


def test_documented_error_statuses(backend_server: ServerHandle) -> None:
    p = Product(backend_server)
    other = Product(backend_server)
    dev = device()
    base = {"client_id": p.client_id, "device_id": dev, "model_id": MODEL,
            "response_type": "code", "state": "s"}
    bearer = {"authorization": f"Bearer {p.account_token}"}

    async def go() -> None:
        client = await backend_server.connect()
        try:
            # /authorize: 400 for missing or invalid parameters.
            for broken in ({k: v for k, v in base.items() if k != "client_id"},
                           {**base, "response_type": "token"},
                           {**base, "client_id": "no-such-client"},
                           {**base, "request_vu": "maybe"},
                           {**base, "device_id": " padded "}):
                error(await call(client, "authorize", broken, headers=bearer), 400)
            # Parameter given in the query string and the body with different values.
            resp = await client.request(
                "POST", f"{PREFIX}/authorize?client_id=x", {**bearer, "content-type": FORM},
                urllib.parse.urlencode(base).encode())
            assert "twice" in body(resp)["error_description"] and resp.status == 400
            # Body that is not a form, too large, or a method other than GET/POST.
            resp = await client.request("POST", f"{PREFIX}/authorize",
                                        {**bearer, "content-type": "application/json"},
                                        json.dumps(base).encode())
            error(resp, 400)
            resp = await client.request("POST", f"{PREFIX}/authorize",
                                        {**bearer, "content-type": FORM}, b"a=" + b"x" * 40_000)
            assert "larger" in body(resp)["error_description"] and resp.status == 400
            error(await call(client, "authorize", base, method="PUT", headers=bearer), 400)
            # 403: bad account token; no token and no guest request.
            error(await call(client, "authorize", base,
                             headers={"authorization": "Bearer nope"}), 403)
            error(await call(client, "authorize", base), 403)
            # Another product's account token is a valid user: the code is bound to
            # the client_id it was asked for, so other's client cannot exchange it.
            code = await authorize(client, p, dev)

            # /token: 400 for every problem of the code and refresh grants.
            error(await call(client, "token", {"client_id": p.client_id}), 400)
            assert error(await call(client, "token", p.creds(grant_type="password")),
                         400) == "unsupported_grant_type"
            exchange_params = {"grant_type": "authorization_code", "code": code,
                               "device_id": dev, "model_id": MODEL}
            assert error(await call(client, "token", {**p.creds(**exchange_params),
                                                      "client_secret": "wrong"}),
                         400) == "invalid_client"
            error(await call(client, "token", other.creds(**exchange_params)), 400)
            error(await call(client, "token", p.creds(**{**exchange_params,
                                                          "device_id": device()})), 400)
            error(await call(client, "token", p.creds(**{**exchange_params,
                                                          "model_id": "other"})), 400)
            error(await call(client, "token", p.creds(grant_type="authorization_code",
                                                      device_id=dev, model_id=MODEL)), 400)
            # ... and those failures did not burn the code for its rightful owner.
            pair = await exchange(client, p, dev, code)
            error(await call(client, "token", p.creds(grant_type="refresh_token",
                                                      refresh_token="bogus", model_id=MODEL)), 400)
            # Another client cannot refresh (nor thereby revoke) this device's pair.
            error(await call(client, "token", other.creds(
                grant_type="refresh_token", refresh_token=pair["refresh_token"],
                model_id=MODEL)), 400)
            # delete: 401 for bad client credentials or unknown device/model, 400 otherwise.
            delete = {"grant_type": "delete", "access_token": pair["access_token"],
                      "device_id": dev, "model_id": MODEL}
            error(await call(client, "token", {**p.creds(**delete), "client_secret": "x"}), 401)
            error(await call(client, "token", p.creds(**{**delete, "device_id": device()})), 401)
            error(await call(client, "token", p.creds(**{**delete, "model_id": "m2"})), 401)
            error(await call(client, "token", p.creds(**{**delete, "access_token": "nope"})), 400)
            error(await call(client, "token", other.creds(**delete)), 400)
            error(await call(client, "token", p.creds(grant_type="delete", device_id=dev,
                                                      model_id=MODEL)), 400)
            # Still alive after all that: the refresh token works.
            resp = await call(client, "token", p.creds(
                grant_type="refresh_token", refresh_token=pair["refresh_token"],
                model_id=MODEL, device_id=dev))
            assert resp.status == 200
        finally:
            await client.close()

    run(go())


def test_expired_code_and_device_of_another_account(backend_server: ServerHandle) -> None:
    p = Product(backend_server)
    q = Product(backend_server)
    dev = device()

    async def old_code(store: Store) -> str:
        user = await store.users.get_by_name(p.user)
        assert user is not None
        return await store.auth_codes.issue(client_id=p.client_id, user_id=user.user_id,
                                            device_id=dev, model_id=MODEL, ttl=60,
                                            now=time.time() - 120)

    expired = backend_server.with_store(old_code)

    async def go() -> None:
        client = await backend_server.connect()
        try:
            error(await call(client, "token", p.creds(
                grant_type="authorization_code", code=expired, device_id=dev,
                model_id=MODEL)), 400)
            await exchange(client, p, dev, await authorize(client, p, dev))
            # q's user authorising p's user's device (same device_id): refused at /token.
            q.client_id, q.secret = p.client_id, p.secret
            code = await authorize(client, q, dev)
            assert "another account" in body(await call(client, "token", q.creds(
                grant_type="authorization_code", code=code, device_id=dev,
                model_id=MODEL)))["error_description"]
        finally:
            await client.close()

    run(go())


def test_form_body_and_guest_code(backend_server: ServerHandle) -> None:
    p = Product(backend_server)
    dev = device()

    async def go() -> None:
        client = await backend_server.connect()
        try:
            code = await authorize(client, p, dev, form=True)  # form body this time
            assert (await exchange(client, p, dev, code))["access_token"]
            # Guest: no Authorization header, request_vu=Y, the rest unchanged (auth.md §4).
            guest_dev = device()
            resp = await call(client, "authorize", {
                "client_id": p.client_id, "device_id": guest_dev, "model_id": MODEL,
                "response_type": "code", "state": "g", "request_vu": "Y"})
            doc = body(resp)
            assert resp.status == 200 and doc["state"] == "g"
            pair = await exchange(client, p, guest_dev, doc["code"])
            await open_downchannel(client, pair["access_token"])
            return pair["access_token"]  # type: ignore[no-any-return]
        finally:
            await client.close()

    access = run(go())

    async def grant(store: Store) -> Any:
        return await store.tokens.lookup(access)

    found = backend_server.with_store(grant)
    assert found is not None and found.guest and found.user_id is None


@pytest.fixture(scope="module")
def terms_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with serving(tmp_path_factory.mktemp("auth-terms"), env={
        "OPENCIC_AUTH_REQUIRE_TERMS": "true", "OPENCIC_AUTH_GUEST_MODE": "false"}) as handle:
        yield handle


def test_terms_flow_451(terms_server: ServerHandle) -> None:
    p = Product(terms_server)
    dev = device()
    params = {"client_id": p.client_id, "device_id": dev, "model_id": MODEL,
              "response_type": "code", "state": "t%20s"}
    bearer = {"authorization": f"Bearer {p.account_token}"}

    async def go() -> None:
        client = await terms_server.connect()
        try:
            # Disagreeing ends in agreement-failure and burns the code.
            resp = await call(client, "authorize", params, headers=bearer)
            doc = body(resp)
            assert resp.status == 451 and doc["state"] == "t%20s" and doc["code"]
            page = urllib.parse.urlsplit(doc["redirect_uri"])
            assert page.path == f"{PREFIX}/terms"
            resp = await client.request("POST", page.path, {"content-type": FORM},
                                        urllib.parse.urlencode({"code": doc["code"],
                                                                "agree": "N"}).encode())
            assert resp.status == 302
            assert resp.headers["location"] == "clova://agreement-failure?error=user-disagreement"

            resp = await call(client, "authorize", params, headers=bearer)
            doc = body(resp)
            assert resp.status == 451
            code = doc["code"]
            # The code cannot be exchanged before the agreement.
            exchange_params = p.creds(grant_type="authorization_code", code=code,
                                      device_id=dev, model_id=MODEL)
            error(await call(client, "token", exchange_params), 400)
            page = urllib.parse.urlsplit(doc["redirect_uri"])
            shown = await client.request("GET", f"{page.path}?{page.query}")
            assert shown.status == 200 and b"<form" in shown.body
            assert shown.headers["content-type"].startswith("text/html")
            resp = await client.request("POST", page.path, {"content-type": FORM},
                                        urllib.parse.urlencode({"code": code,
                                                                "agree": "Y"}).encode())
            assert resp.status == 302 and resp.headers["location"] == "clova://agreement-success"
            resp = await call(client, "token", exchange_params)
            assert resp.status == 200, body(resp)
            # Agreed once: later codes come with 200.
            assert (await call(client, "authorize", params, headers=bearer)).status == 200
            # An unknown code on the page: failure; guest mode switched off: 403.
            resp = await client.request("POST", page.path, {"content-type": FORM},
                                        b"code=nope&agree=Y")
            assert resp.headers["location"] == "clova://agreement-failure?error=terms_not_agreed"
            guest = {k: v for k, v in params.items()} | {"request_vu": "Y"}
            error(await call(client, "authorize", guest), 403)
        finally:
            await client.close()

    run(go())


def test_sdk_token_manager_refreshes_and_reconnects(backend_server: ServerHandle) -> None:
    p = Product(backend_server)
    dev = device()
    auth_url = backend_server.url + PREFIX
    saved: list[TokenSet] = []

    async def go() -> None:
        doc = await request_code(auth_url, client_id=p.client_id, device_id=dev, model_id=MODEL,
                                 state="sdk", account_token=p.account_token)
        assert doc["state"] == "sdk"
        manager = TokenManager(auth_url, p.client_id, p.secret, dev, MODEL,
                               on_update=saved.append)
        first = await manager.exchange_code(doc["code"])
        assert saved == [first]
        # A manager that only has a refresh token and a stale access token: the
        # downchannel's 401 refreshes it and the client connects.
        stale = TokenManager(auth_url, p.client_id, p.secret, dev, MODEL,
                             access_token="stale", refresh_token=first.refresh_token,
                             on_update=saved.append)
        async with CICClient(backend_server.url, stale) as client:
            assert stale.refreshes == 1 and client.is_connected
            # An event refused with 401 is resent after a refresh.
            current = stale.tokens
            assert current is not None
            stale._tokens = TokenSet("revoked-meanwhile", current.refresh_token, current.expires_at)
            response = await client.recognize_text("what time is it")
            assert response.status == 200 and stale.refreshes == 2
            # Before expiry: a token that expires within refresh_margin is renewed first.
            current = stale.tokens
            assert current is not None
            stale._tokens = TokenSet(current.access_token, current.refresh_token,
                                     time.time() + 10)
            response = await client.recognize_text("what time is it")
            assert response.status == 200 and stale.refreshes == 3
            # The old manager's refresh token was rotated away.
            with pytest.raises(AuthAPIError) as refused:
                await manager.refresh()
            assert refused.value.status == 400
            # Delete: the server closes the downchannel; the pair is dead, so the
            # reconnect's refresh fails and the client gives up with AuthenticationFailed.
            await stale.revoke()
            deadline = time.monotonic() + 10
            while client.is_connected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert not client.is_connected
        assert len(saved) == 4

    run(go())

    async def never(server: str) -> None:
        with pytest.raises(AuthAPIError) as refused:
            await request_code(server, client_id=p.client_id, device_id=dev, model_id=MODEL,
                               state="x", account_token="wrong")
        assert refused.value.status == 403

    run(never(auth_url))


def test_cli_user_and_client_commands(database: tuple[str, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from opencic.cli.main import main
    from opencic.state.store import create_store

    db, data_dir = database
    where = ["--data-dir", str(data_dir), "--database", db]
    assert main(["user", "add", "carol", *where]) == 0
    account_token = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["user", "add", "carol", *where]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["client", "add", "kitchen speaker", "--client-id", "kitchen", *where]) == 0
    out = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    assert out["client_id"] == "kitchen"
    assert main(["user", "list", *where]) == 0
    assert capsys.readouterr().out.startswith("carol\t")
    assert main(["client", "list", *where]) == 0
    assert "kitchen\tkitchen speaker" in capsys.readouterr().out

    async def check() -> None:
        async with create_store(db, data_dir) as store:
            user = await store.account_tokens.lookup(account_token)
            assert user is not None and user.name == "carol"
            assert await store.clients.verify("kitchen", out["client_secret"]) is not None
            # Stored hashed only.
            rows = await store.driver.fetch("SELECT secret_hash FROM clients")
            assert out["client_secret"] not in str(rows)
            rows = await store.driver.fetch("SELECT token_hash FROM account_tokens")
            assert account_token not in str(rows)

    run(check())
    assert main(["user", "remove", "carol", *where]) == 0
    assert main(["user", "remove", "carol", *where]) == 1
    assert main(["client", "remove", "kitchen", *where]) == 0
    assert main(["client", "remove", "kitchen", *where]) == 1
    capsys.readouterr()
    assert main(["user", "list", *where]) == 0 and capsys.readouterr().out == ""

    async def gone() -> None:
        async with create_store(db, data_dir) as store:
            assert await store.account_tokens.lookup(account_token) is None

    run(gone())
