"""No secret or token in any log: every path that handles one is driven once, at log
level debug, and neither the server's log nor any CLI's stdout/stderr holds a secret
(except the one new token or secret a CLI command was asked to print)."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import secrets
import subprocess
import sys
import urllib.parse
import uuid
from pathlib import Path

from support import pg
from support.cic import CONTENT_TYPE, auth_headers, event_body, event_json, open_downchannel
from support.rawh2 import RawH2, Response
from support.server import start_server, stop_server

from opencic.state.postgres import redact

PREFIX = "/auth/v1"
FORM = "application/x-www-form-urlencoded"
MODEL = "m1"


def test_redact_hides_every_password_form_of_a_dsn() -> None:
    assert redact("postgresql://u:p%40ss@h:5432/db?search_path=s") == \
        "postgresql://u:***@h:5432/db?search_path=s"
    assert redact("postgresql://u@h/db?password=pw&search_path=s&sslpassword=k") == \
        "postgresql://u@h/db?password=***&search_path=s&sslpassword=***"
    assert redact("postgresql://h/db") == "postgresql://h/db"


def with_password(dsn: str, password: str) -> str:
    """``dsn`` with ``password`` in its user-info part."""
    parts = urllib.parse.urlsplit(dsn)
    user, _, host = parts.netloc.rpartition("@")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


class Cli:
    """Runs ``opencic`` commands as a user would, keeping every output."""

    def __init__(self, data_dir: Path, database: str) -> None:
        self.where = ["--data-dir", str(data_dir), "--database", database]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCIC_")}
        self.env["OPENCIC_LOG_LEVEL"] = "debug"
        self.outputs: list[tuple[list[str], str, set[str]]] = []

    def __call__(self, *args: str, stdin: str = "") -> str:
        proc = subprocess.run([sys.executable, "-m", "opencic.cli.main", *args, *self.where],
                              input=stdin, capture_output=True, text=True, env=self.env,
                              timeout=120, check=False)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        self.outputs.append((list(args), proc.stdout + proc.stderr, set()))
        return proc.stdout

    def printed(self, secret: str) -> str:
        """Marks ``secret`` as what the last command was asked to print."""
        self.outputs[-1][2].add(secret)
        return secret


async def form_call(client: RawH2, endpoint: str, params: dict[str, str],
                    headers: dict[str, str] | None = None) -> Response:
    return await client.request("POST", f"{PREFIX}/{endpoint}",
                                {"content-type": FORM, **(headers or {})},
                                urllib.parse.urlencode(params).encode())


async def sign_in(client: RawH2, fields: dict[str, str], user: str, password: str) -> Response:
    form = await client.request("GET", f"{PREFIX}/login?{urllib.parse.urlencode(fields)}")
    assert form.status == 200, form.body
    cookie = form.headers["set-cookie"].split(";", 1)[0]
    found = re.search(rb'name="csrf_token" value="([^"]*)"', form.body)
    assert found
    data = {**fields, "username": user, "password": password,
            "csrf_token": html.unescape(found.group(1).decode())}
    return await form_call(client, "login", data, {"cookie": cookie})


def test_no_secret_reaches_a_log(postgres_dsn: str, tmp_path: Path) -> None:
    found: set[str] = set()  # every secret value seen in this test

    def secret(value: str) -> str:
        found.add(value)
        return value

    # Both places a DSN can carry a password; trust authentication ignores them.
    pg_password = secret(f"pgpw-{secrets.token_hex(8)}")
    pg_query_password = secret(f"pgqpw-{secrets.token_hex(8)}")
    database = with_password(pg.fresh_schema(postgres_dsn), pg_password)
    database += f"&password={pg_query_password}"
    data_dir = tmp_path / "data"
    cli = Cli(data_dir, database)

    # The CLI: a product's secret, a user's password and account tokens, a device token.
    out = cli("client", "add", "log test product")
    client_id = re.search(r"client_id=(\S+)", out).group(1)  # type: ignore[union-attr]
    client_secret = secret(cli.printed(re.search(r"client_secret=(\S+)", out).group(1)))  # type: ignore[union-attr]
    user = f"alice-{uuid.uuid4().hex[:6]}"
    first_password = secret(f"first-pw-{secrets.token_hex(6)}")
    account_token = secret(cli.printed(
        cli("user", "add", user, "--password", stdin=first_password + "\n").split()[-1]))
    password = secret(f"pw-{secrets.token_hex(6)}")
    cli("user", "password", user, stdin=password + "\n")
    account_token_2 = secret(cli.printed(cli("user", "token", user).split()[-1]))
    cli_device = f"cli-{uuid.uuid4().hex[:8]}"
    device_token = secret(cli.printed(cli("token", "create", "--device-id", cli_device).split()[-1]))
    doomed = secret(cli.printed(cli("token", "create", "--device-id", cli_device + "x").split()[-1]))
    cli("token", "revoke", "-", stdin=doomed + "\n")  # kept out of ps
    cli("user", "list")
    cli("client", "list")

    server = start_server(data_dir, env={"OPENCIC_DATABASE": database,
                                         "OPENCIC_LOG_LEVEL": "debug"})
    admin_token = secret((data_dir / "admin.token").read_text().strip())
    wrong = {name: secret(f"{name}-{secrets.token_hex(8)}")
             for name in ("bad-bearer", "bad-account", "bad-secret", "bad-admin", "bad-pw",
                          "bad-refresh", "bad-code")}

    async def go() -> None:
        client = await server.connect()
        try:
            dev = f"dev-{uuid.uuid4().hex[:8]}"
            base = {"client_id": client_id, "device_id": dev, "model_id": MODEL,
                    "response_type": "code", "state": "st"}
            creds = {"client_id": client_id, "client_secret": client_secret}
            # /authorize with an account token (and a wrong one), in a form and a query.
            resp = await form_call(client, "authorize", base,
                                   {"authorization": f"Bearer {account_token}"})
            code = secret(json.loads(resp.body)["code"])
            resp = await client.request(
                "GET", f"{PREFIX}/authorize?{urllib.parse.urlencode(base)}",
                {"authorization": f"Bearer {wrong['bad-account']}"})
            assert resp.status == 403
            resp = await client.request(
                "GET", f"{PREFIX}/authorize?{urllib.parse.urlencode({**base, 'state': 'again'})}",
                {"authorization": f"Bearer {account_token_2}"})
            assert resp.status == 200, resp.body
            secret(json.loads(resp.body)["code"])
            # /token: a wrong secret and a wrong code, then the code, refresh, delete.
            exchange = {"grant_type": "authorization_code", "device_id": dev, "model_id": MODEL}
            resp = await form_call(client, "token", {**exchange, **creds, "code": code,
                                                     "client_secret": wrong["bad-secret"]})
            assert resp.status == 400
            resp = await form_call(client, "token", {**exchange, **creds,
                                                     "code": wrong["bad-code"]})
            assert resp.status == 400
            resp = await form_call(client, "token", {**exchange, **creds, "code": code})
            assert resp.status == 200, resp.body
            pair = json.loads(resp.body)
            access, refresh = secret(pair["access_token"]), secret(pair["refresh_token"])
            # CIC with valid and invalid bearer tokens.
            sid = await open_downchannel(client, access)
            body = event_body(event_json("TextRecognizer", "Recognize", {"text": "hello"},
                                         str(uuid.uuid4())))
            resp = await client.request("POST", "/v1/events", auth_headers(access, CONTENT_TYPE), body)
            assert resp.status == 200
            for path, method in (("/v1/events", "POST"), ("/v1/directives", "GET")):
                resp = await client.request(method, path, auth_headers(wrong["bad-bearer"], CONTENT_TYPE),
                                            body if method == "POST" else None)
                assert resp.status == 401
            assert (await client.request("GET", "/ping", auth_headers(access))).status == 204
            # Refresh (and a bogus refresh token), then delete with the new pair.
            refresh_params = {"grant_type": "refresh_token", "model_id": MODEL, **creds}
            resp = await form_call(client, "token", {**refresh_params,
                                                     "refresh_token": wrong["bad-refresh"]})
            assert resp.status == 400
            resp = await client.request("GET", f"{PREFIX}/token?" + urllib.parse.urlencode(
                {**refresh_params, "refresh_token": refresh}))
            assert resp.status == 200, resp.body
            pair = json.loads(resp.body)
            access_2 = secret(pair["access_token"])
            secret(pair["refresh_token"])
            resp = await form_call(client, "token", {"grant_type": "delete", "device_id": dev,
                                                     "model_id": MODEL, "access_token": access_2,
                                                     **creds})
            assert resp.status == 200, resp.body
            await client.wait(sid, lambda s: s.ended)  # delete closes the device's downchannel
            # The login page: a wrong password, then the right one, and its code.
            dev_2 = f"dev-{uuid.uuid4().hex[:8]}"
            fields = {"client_id": client_id, "device_id": dev_2, "model_id": MODEL, "state": "s"}
            assert (await sign_in(client, fields, user, wrong["bad-pw"])).status == 401
            resp = await sign_in(client, fields, user, password)
            assert resp.status == 200, resp.body
            login_code = secret(html.unescape(
                re.search(rb"<code>([^<]*)</code>", resp.body).group(1).decode()))  # type: ignore[union-attr]
            resp = await form_call(client, "token", {"grant_type": "authorization_code",
                                                     "code": login_code, "device_id": dev_2,
                                                     "model_id": MODEL, **creds})
            assert resp.status == 200, resp.body
            pair = json.loads(resp.body)
            secret(pair["access_token"])
            secret(pair["refresh_token"])
            # The CLI's device token on CIC; the admin API with right and wrong tokens.
            await open_downchannel(client, device_token)
            push = json.dumps({"devices": "all", "directives": [
                {"namespace": "Notifier", "name": "ClearIndicator", "payload": {}}]}).encode()
            for token, status in ((admin_token, 200), (wrong["bad-admin"], 401)):
                resp = await client.request("POST", "/admin/v1/push", {
                    "authorization": f"Bearer {token}", "content-type": "application/json"}, push)
                assert resp.status == status
            assert (await client.request("POST", "/v1/events", auth_headers(doomed, CONTENT_TYPE),
                                         body)).status == 401
        finally:
            await client.close()

    try:
        asyncio.run(go())
    finally:
        stop_server(server)  # flushes the access log
    log = server.log_text()
    # It ran at debug, against PostgreSQL, and said where (without the password).
    assert "DEBUG" in log or '"level": "debug"' in log, log[-2000:]
    assert redact(database) in log and "***" in redact(database)
    leaked = {s for s in found if s in log}
    assert not leaked, f"secrets in the server log: {leaked}"
    for args, text, allowed in cli.outputs:
        assert not {s for s in found - allowed if s in text}, (args, text)
