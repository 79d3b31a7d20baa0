"""The companion-app login page (``<prefix>/login``) for headless devices, over real
sockets on both state back ends: the form, sign-in -> code -> /token -> a working CIC
token, wrong passwords, CSRF (missing, forged, another session's, reused, altered
form), the failure rate limits, HTML escaping, the security headers, and
``opencic user add --password``."""

from __future__ import annotations

import asyncio
import html
import io
import json
import re
import secrets
import stat
import urllib.parse
import uuid
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cic import open_downchannel
from support.rawh2 import RawH2, Response
from support.server import ServerHandle, serving

from opencic.state.base import Store

PREFIX = "/auth/v1"
LOGIN = f"{PREFIX}/login"
FORM = "application/x-www-form-urlencoded"
MODEL = "login-model"
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def device() -> str:
    return f"login-{uuid.uuid4().hex[:12]}"


class Account:
    """A registered product and a user with a password (and an account token)."""

    def __init__(self, server: ServerHandle, *, password: str | None = "correct horse") -> None:
        self.client_id = f"c-{uuid.uuid4().hex[:10]}"
        self.secret = "s" + secrets.token_urlsafe(16)  # as `client add` makes: never "-…"
        self.user = f"u-{uuid.uuid4().hex[:10]}"
        self.password = password

        async def provision(store: Store) -> str:
            await store.clients.add(self.client_id, self.secret, name="login product")
            user = await store.users.add(self.user, password)
            return await store.account_tokens.issue(user.user_id)

        self.account_token: str = server.with_store(provision)

    def fields(self, dev: str, state: str = "st") -> dict[str, str]:
        return {"client_id": self.client_id, "device_id": dev, "model_id": MODEL, "state": state}


class Form:
    """A rendered form: its session cookie and CSRF token."""

    def __init__(self, resp: Response, cookie: str | None = None) -> None:
        assert resp.status in (200, 401, 429), (resp.status, resp.body)
        set_cookie = resp.headers.get("set-cookie")
        if set_cookie is not None:
            cookie = set_cookie.split(";", 1)[0]
        assert cookie is not None
        self.cookie = cookie
        self.csrf = csrf_of(resp)
        self.response = resp


def csrf_of(resp: Response) -> str:
    found = re.search(rb'name="csrf_token" value="([^"]*)"', resp.body)
    assert found, resp.body
    return html.unescape(found.group(1).decode())


def code_of(resp: Response) -> str:
    found = re.search(rb"<code>([^<]*)</code>", resp.body)
    assert found, resp.body
    return html.unescape(found.group(1).decode())


def assert_secure_headers(resp: Response) -> None:
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["content-security-policy"] == CSP
    assert resp.headers["x-frame-options"] == "DENY"
    assert b"<script" not in resp.body.lower()


async def get_form(client: RawH2, fields: dict[str, str], cookie: str | None = None) -> Form:
    headers = {"cookie": cookie} if cookie else {}
    resp = await client.request("GET", f"{LOGIN}?{urllib.parse.urlencode(fields)}", headers)
    assert resp.status == 200, resp.body
    assert_secure_headers(resp)
    return Form(resp, cookie)


async def post(client: RawH2, fields: dict[str, str], *, cookie: str | None, csrf: str | None,
               username: str, password: str) -> Response:
    data = {**fields, "username": username, "password": password}
    if csrf is not None:
        data["csrf_token"] = csrf
    headers = {"content-type": FORM}
    if cookie is not None:
        headers["cookie"] = cookie
    resp = await client.request("POST", LOGIN, headers, urllib.parse.urlencode(data).encode())
    assert_secure_headers(resp)
    return resp


async def sign_in(client: RawH2, a: Account, fields: dict[str, str], *,
                  password: str | None = None) -> Response:
    form = await get_form(client, fields)
    return await post(client, fields, cookie=form.cookie, csrf=form.csrf, username=a.user,
                      password=(a.password or "") if password is None else password)


def test_form_renders_with_cookie_and_headers(backend_server: ServerHandle) -> None:
    a = Account(backend_server)
    dev = device()

    async def go() -> None:
        client = await backend_server.connect()
        try:
            resp = await client.request(
                "GET", f"{LOGIN}?{urllib.parse.urlencode(a.fields(dev))}")
            assert resp.status == 200
            assert_secure_headers(resp)
            cookie = resp.headers["set-cookie"]
            attrs = {part.strip().lower() for part in cookie.split(";")[1:]}
            assert {"httponly", "samesite=strict", f"path={LOGIN}"} <= attrs
            page = resp.body.decode()
            assert '<form method="post" action="/auth/v1/login">' in page
            for name, value in a.fields(dev).items():
                assert f'name="{name}" value="{value}"' in page
            assert 'type="password"' in page and csrf_of(resp)
            # Missing or unknown parameters: an HTML error page, 400, same headers.
            for broken in ({**a.fields(dev), "client_id": "no-such-client"},
                           {k: v for k, v in a.fields(dev).items() if k != "state"}):
                bad = await client.request("GET", f"{LOGIN}?{urllib.parse.urlencode(broken)}")
                assert bad.status == 400
                assert_secure_headers(bad)
                assert b"<form" not in bad.body
        finally:
            await client.close()

    run(go())
    secret = backend_server.data_dir / "login.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_login_code_exchanges_for_a_working_token(backend_server: ServerHandle) -> None:
    a = Account(backend_server)
    dev = device()

    async def go() -> str:
        client = await backend_server.connect()
        try:
            resp = await sign_in(client, a, a.fields(dev, state="from-device"))
            assert resp.status == 200, resp.body
            assert b"<form" not in resp.body
            code = code_of(resp)
            token = await client.request("POST", f"{PREFIX}/token", {"content-type": FORM},
                                         urllib.parse.urlencode({
                                             "grant_type": "authorization_code", "code": code,
                                             "client_id": a.client_id, "client_secret": a.secret,
                                             "device_id": dev, "model_id": MODEL}).encode())
            assert token.status == 200, token.body
            pair = json.loads(token.body)
            await open_downchannel(client, pair["access_token"])
            return code
        finally:
            await client.close()

    code = run(go())

    async def owner(store: Store) -> tuple[Any, Any]:
        return await store.devices.get(dev), await store.users.get_by_name(a.user)

    found, user = backend_server.with_store(owner)
    assert found is not None and user is not None and found.user_id == user.user_id
    # Nothing secret in the server's log.
    text = backend_server.log_text()
    assert a.password is not None and a.password not in text and code not in text


def test_wrong_password_is_401_with_a_generic_error(backend_server: ServerHandle) -> None:
    a = Account(backend_server)
    no_password = Account(backend_server, password=None)
    dev = device()

    async def go() -> None:
        client = await backend_server.connect()
        try:
            fields = a.fields(dev)
            form = await get_form(client, fields)
            bodies = []
            for username, password in ((a.user, "wrong"), ("nobody-" + a.user, "x")):
                resp = await post(client, fields, cookie=form.cookie, csrf=form.csrf,
                                  username=username, password=password)
                assert resp.status == 401
                assert b"Wrong user name or password." in resp.body
                assert f'value="{username}"'.encode() in resp.body  # prefilled again
                assert b"<code>" not in resp.body
                form = Form(resp, form.cookie)  # a fresh token comes with the form
                bodies.append(resp.body.replace(username.encode(), b"").replace(
                    form.csrf.encode(), b""))
            assert bodies[0] == bodies[1]  # unknown name and wrong password look the same
            # A user who only has an account token cannot sign in here.
            resp = await post(client, no_password.fields(dev), cookie=form.cookie,
                              csrf=None, username=no_password.user, password="")
            assert resp.status == 403  # (no token: CSRF first)
            nf = await get_form(client, no_password.fields(dev), form.cookie)
            resp = await post(client, no_password.fields(dev), cookie=form.cookie, csrf=nf.csrf,
                              username=no_password.user, password="anything")
            assert resp.status == 401
            # The right password still works on the same session.
            resp = await post(client, fields, cookie=form.cookie, csrf=form.csrf,
                              username=a.user, password="correct horse")
            assert resp.status == 200 and code_of(resp)
        finally:
            await client.close()

    run(go())


def test_csrf_missing_forged_foreign_reused_or_altered_is_403(
        backend_server: ServerHandle) -> None:
    a = Account(backend_server)
    dev = device()
    fields = a.fields(dev)

    async def go() -> None:
        client = await backend_server.connect()
        try:
            mine = await get_form(client, fields)
            other = await get_form(client, fields)  # another session (no cookie sent)
            assert mine.cookie != other.cookie
            ok = {"username": a.user, "password": "correct horse"}
            issued, nonce, mac = mine.csrf.split(".")
            forged_mac = mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB")
            attempts: list[tuple[str | None, str | None]] = [
                (mine.cookie, None),                                   # no token
                (None, mine.csrf),                                     # no cookie
                (mine.cookie, ""),                                     # empty token
                (mine.cookie, f"{issued}.{nonce}.{forged_mac}"),       # forged signature
                (mine.cookie, f"{int(issued) - 3600}.{nonce}.{mac}"),  # re-dated
                (mine.cookie, other.csrf),                             # other session's
                (other.cookie, mine.csrf),
                ("opencic_login=" + "A" * 43, mine.csrf),              # made-up cookie
            ]
            for cookie, csrf in attempts:
                resp = await post(client, fields, cookie=cookie, csrf=csrf, **ok)
                assert resp.status == 403, (cookie, csrf, resp.status)
                assert b"<code>" not in resp.body and b"expired" in resp.body
            # The hidden fields are signed: another device_id with a valid token: 403.
            altered = {**fields, "device_id": device()}
            resp = await post(client, altered, cookie=mine.cookie, csrf=mine.csrf, **ok)
            assert resp.status == 403
            # A token works once: used now (successfully), refused the second time.
            fresh = await get_form(client, fields, mine.cookie)
            resp = await post(client, fields, cookie=mine.cookie, csrf=fresh.csrf, **ok)
            assert resp.status == 200 and code_of(resp)
            resp = await post(client, fields, cookie=mine.cookie, csrf=fresh.csrf, **ok)
            assert resp.status == 403
            # The cross-site shape of the attack: a POST without cookie or token.
            resp = await client.request("POST", LOGIN, {"content-type": FORM},
                                        urllib.parse.urlencode({**fields, **ok}).encode())
            assert resp.status == 403
            assert_secure_headers(resp)
        finally:
            await client.close()

    run(go())


def test_failures_are_rate_limited_per_user(backend_server: ServerHandle) -> None:
    a = Account(backend_server)
    b = Account(backend_server)
    dev = device()

    async def go() -> None:
        client = await backend_server.connect()
        try:
            for _ in range(5):
                assert (await sign_in(client, a, a.fields(dev), password="nope")).status == 401
            # Even the right password is no longer checked for this user name.
            resp = await sign_in(client, a, a.fields(dev))
            assert resp.status == 429 and b"Too many" in resp.body
            assert int(resp.headers["retry-after"]) > 0
            assert b"<code>" not in resp.body
            # Another user from the same address is unaffected; success costs nothing.
            for _ in range(6):
                resp = await sign_in(client, b, b.fields(device()))
                assert resp.status == 200, resp.body
        finally:
            await client.close()

    run(go())


def test_reflected_values_are_escaped(backend_server: ServerHandle) -> None:
    a = Account(backend_server)
    evil = '"><script>alert(1)</script><b x=\'&amp;'
    fields = {**a.fields("<i>dev</i>&co"), "state": evil}

    async def go() -> None:
        client = await backend_server.connect()
        try:
            form = await get_form(client, fields)
            page = form.response.body.decode()
            assert "<script>" not in page and "<i>" not in page
            assert html.escape(evil, quote=True) in page
            assert "&lt;i&gt;dev&lt;/i&gt;&amp;co" in page
            resp = await post(client, fields, cookie=form.cookie, csrf=form.csrf,
                              username=evil, password="x")
            assert resp.status == 401
            assert b"<script>" not in resp.body
            assert html.escape(evil, quote=True).encode() in resp.body
            # The escaped values round-trip: the right password gives a code for them.
            again = Form(resp, form.cookie)
            resp = await post(client, fields, cookie=form.cookie, csrf=again.csrf,
                              username=a.user, password="correct horse")
            assert resp.status == 200 and b"<i>" not in resp.body and code_of(resp)
        finally:
            await client.close()

    run(go())


@pytest.fixture(scope="module")
def terms_login_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """Its own server: the per-address limit would otherwise block the other tests."""
    with serving(tmp_path_factory.mktemp("auth-login"),
                          env={"OPENCIC_AUTH_REQUIRE_TERMS": "true"}) as handle:
        yield handle


def test_terms_link_then_rate_limit_per_address(terms_login_server: ServerHandle) -> None:
    server = terms_login_server
    a = Account(server)
    dev = device()

    async def go() -> None:
        client = await server.connect()
        try:
            # auth_require_terms: the code comes with a link to the terms page, and is
            # exchangeable once the user agreed there.
            resp = await sign_in(client, a, a.fields(dev))
            assert resp.status == 200
            code = code_of(resp)
            link = re.search(rb'<a href="([^"]*)">', resp.body)
            assert link is not None
            terms = urllib.parse.urlsplit(html.unescape(link.group(1).decode()))
            assert terms.path == f"{PREFIX}/terms"
            assert urllib.parse.parse_qs(terms.query)["code"] == [code]
            agreed = await client.request("POST", terms.path, {"content-type": FORM},
                                          urllib.parse.urlencode({"code": code,
                                                                  "agree": "Y"}).encode())
            assert agreed.headers["location"] == "clova://agreement-success"
            token = await client.request("POST", f"{PREFIX}/token", {"content-type": FORM},
                                         urllib.parse.urlencode({
                                             "grant_type": "authorization_code", "code": code,
                                             "client_id": a.client_id, "client_secret": a.secret,
                                             "device_id": dev, "model_id": MODEL}).encode())
            assert token.status == 200, token.body

            # 20 failures from one address, spread over user names: then 429 for anyone.
            for i in range(20):
                form = await get_form(client, a.fields(dev))
                resp = await post(client, a.fields(dev), cookie=form.cookie, csrf=form.csrf,
                                  username=f"guess-{i}", password="x")
                assert resp.status == 401
            resp = await sign_in(client, a, a.fields(dev))
            assert resp.status == 429
        finally:
            await client.close()

    run(go())


def test_cli_user_add_with_password(database: tuple[str, Path], capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from opencic.cli.main import main
    from opencic.state.store import create_store

    db, data_dir = database
    where = ["--data-dir", str(data_dir), "--database", db]
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret pass\n"))
    assert main(["user", "add", "dave", "--password", *where]) == 0
    account_token = capsys.readouterr().out.strip().splitlines()[-1]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["user", "add", "erin", "--password", *where]) == 1
    assert "empty" in capsys.readouterr().err

    async def check(password: str) -> None:
        async with create_store(db, data_dir) as store:
            user = await store.users.verify_password("dave", password)
            assert user is not None and user.name == "dave"
            assert await store.users.verify_password("dave", "wrong") is None
            assert await store.users.get_by_name("erin") is None
            # The account token flow keeps working, and the password is stored hashed.
            assert await store.account_tokens.lookup(account_token) == user
            rows = await store.driver.fetch("SELECT password_hash FROM users")
            assert password not in str(rows) and str(rows).count("scrypt$") == 1

    run(check("s3cret pass"))
    monkeypatch.setattr("sys.stdin", io.StringIO("new pass\n"))
    assert main(["user", "password", "dave", *where]) == 0
    run(check("new pass"))
    monkeypatch.setattr("sys.stdin", io.StringIO("x\n"))
    assert main(["user", "password", "nobody", *where]) == 1
