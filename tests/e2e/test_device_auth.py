"""A device's side of the auth API end to end over real sockets against a real
``opencic serve`` (B-CN-05, B-ST-04, B-AT-01/04): the SDK's TokenManager with a token
file, and ``opencic device --auth-file`` run as separate processes.

Obtain (login-page code, account token, guest) and persist; a second process uses the
saved pair with no new code; an expired access token is refreshed and the file
rotated; a refused (401) access token is refreshed and the request or downchannel
goes on; logout deletes on the server and removes the file; a damaged file is a clear
error; impossible option combinations exit 2; nothing secret is printed."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cic import auth_headers
from support.server import ServerHandle, serving
from test_auth_login import MODEL, PREFIX, Account, code_of, device, sign_in

from opencic.client.auth import AuthAPIError, TokenManager, request_code
from opencic.client.sdk import CICClient
from opencic.client.tokenstore import SavedTokens, TokenFile, TokenSet
from opencic.protocol.messages import Event
from opencic.state.base import Store
from opencic.state.hashing import token_hash

SHORT_TTL = 4  # seconds an access token lives on the short-lived server


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.fixture(scope="module")
def short_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """Access tokens of SHORT_TTL seconds, so they expire during a test."""
    with serving(tmp_path_factory.mktemp("short-ttl"), env={
        "OPENCIC_TOKEN_TTL_SECONDS": str(SHORT_TTL), "OPENCIC_TOKEN_CACHE_SECONDS": "1"}) as handle:
        yield handle


def quiet_event() -> Event:
    """An authenticated event the server answers 204 without running the assistant."""
    return Event.create("SpeechSynthesizer", "SpeechFinished", {"token": "t"})


def grants(server: ServerHandle, dev: str) -> int:
    """How many pairs the server has issued for ``dev`` (a code or a refresh each)."""
    async def count(store: Store) -> int:
        rows = await store.driver.fetch("SELECT COUNT(*) FROM tokens WHERE device_id = ?", dev)
        return int(rows[0][0])

    return server.with_store(count)


def kill_access_token(server: ServerHandle, access_token: str) -> None:
    """The server stops accepting this access token before its expires_in is up (its
    refresh token stays valid): the device learns it only from a 401."""
    async def expire(store: Store) -> None:
        await store.driver.execute("UPDATE tokens SET expires_at = ? WHERE access_hash = ?",
                                   time.time() - 1, token_hash(access_token))

    server.with_store(expire)
    time.sleep(1.2)  # the server's token cache (OPENCIC_TOKEN_CACHE_SECONDS=1) forgets it


async def directives_status(server: ServerHandle, access_token: str) -> int:
    client = await server.connect()
    try:
        resp = await client.request("GET", "/v1/directives", auth_headers(access_token),
                                    timeout=5)
        return resp.status
    finally:
        await client.close()


def saved(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    assert isinstance(doc, dict)
    return doc


# ---------------------------------------------------------------------------- the SDK


def test_sdk_persists_reuses_refreshes_on_401_and_logs_out(
        backend_server: ServerHandle, tmp_path: Path) -> None:
    a = Account(backend_server)
    dev = device()
    path = tmp_path / "state" / "kitchen.json"
    auth_url = backend_server.url + PREFIX

    def manager() -> TokenManager:
        return TokenManager(auth_url, a.client_id, a.secret, dev, MODEL, store=TokenFile(path))

    async def obtain() -> None:
        m = manager()
        assert m.tokens is None  # no file yet
        doc = await request_code(auth_url, client_id=a.client_id, device_id=dev,
                                 model_id=MODEL, state="s", account_token=a.account_token)
        await m.exchange_code(doc["code"])  # (a third downchannel within 5 s would be 429)

    run(obtain())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = saved(path)
    assert first["device_id"] == dev and first["client_id"] == a.client_id
    assert grants(backend_server, dev) == 1

    async def restart() -> None:
        # A second process: the saved pair, no new code and no refresh.
        m = manager()
        async with CICClient(backend_server.url, m) as client:
            assert (await client.send_event(quiet_event())).status == 204
            assert m.refreshes == 0
            # The server stops accepting the access token: the event's 401 refreshes
            # (the file rotates) and the event is sent again (B-CN-05, B-ST-04).
            await asyncio.to_thread(kill_access_token, backend_server, m())
            assert (await client.send_event(quiet_event())).status == 204
            assert m.refreshes == 1 and saved(path)["access_token"] == m()

    run(restart())
    second = saved(path)
    assert second["refresh_token"] != first["refresh_token"]
    assert grants(backend_server, dev) == 2

    # The saved access token is refused when the next process opens the downchannel: it
    # refreshes and connects.
    kill_access_token(backend_server, second["access_token"])

    async def reconnect_after_401() -> None:
        m = manager()
        async with CICClient(backend_server.url, m) as client:
            assert m.refreshes == 1 and client.is_connected
            assert (await client.send_event(quiet_event())).status == 204
            # Logout: the server deletes the pair and closes the downchannel; the
            # file goes; the client stops instead of reconnecting with nothing.
            doc = await m.revoke()
            assert doc["client_id"] == a.client_id
            assert not path.exists()
            deadline = time.monotonic() + 10
            while client.is_connected:
                assert time.monotonic() < deadline, "the server did not close the downchannel"
                await asyncio.sleep(0.05)
            with pytest.raises(AuthAPIError, match="not been authorised"):
                await client.wait_connected(10)
            with pytest.raises(AuthAPIError):
                await client.send_event(quiet_event())
            assert not client.is_connected
            assert await directives_status(backend_server, doc["access_token"]) == 401

    run(reconnect_after_401())
    assert grants(backend_server, dev) == 3


def test_sdk_refreshes_an_idle_device_before_expiry_and_after_it(
        short_server: ServerHandle, tmp_path: Path) -> None:
    a = Account(short_server)
    dev = device()
    path = tmp_path / "kitchen.json"
    auth_url = short_server.url + PREFIX

    async def go() -> None:
        doc = await request_code(auth_url, client_id=a.client_id, device_id=dev,
                                 model_id=MODEL, state="s", guest=True)
        m = TokenManager(auth_url, a.client_id, a.secret, dev, MODEL, store=TokenFile(path))
        first = await m.exchange_code(doc["code"])
        async with CICClient(short_server.url, m) as client:
            # Idle with the downchannel open: renewed in the background at half-life,
            # each new pair written to the file.
            deadline = time.monotonic() + SHORT_TTL * 3
            while m.refreshes < 2:
                assert time.monotonic() < deadline, "no background refresh"
                await asyncio.sleep(0.1)
            assert saved(path)["access_token"] == m() != first.access_token
            assert time.time() > first.expires_at  # the first token is long expired...
            assert (await client.send_event(quiet_event())).status == 204  # ...and unused
        # A process that starts after its saved access token expired refreshes first.
        await asyncio.sleep(SHORT_TTL + 0.5)
        before = saved(path)
        later = TokenManager(auth_url, a.client_id, a.secret, dev, MODEL, store=TokenFile(path))
        async with CICClient(short_server.url, later) as client:
            assert later.refreshes == 1
            assert saved(path)["refresh_token"] != before["refresh_token"]
            assert (await client.send_event(quiet_event())).status == 204
        # The rotated-away refresh token is dead on the server.
        stale = TokenManager(auth_url, a.client_id, a.secret, dev, MODEL,
                             refresh_token=before["refresh_token"])
        with pytest.raises(AuthAPIError) as refused:
            await stale.refresh()
        assert refused.value.status == 400 and refused.value.error == "invalid_grant"

    run(go())


# ---------------------------------------------------------------------------- the simulator


def device_cli(server: ServerHandle, *args: str) -> subprocess.CompletedProcess[str]:
    """``opencic device`` as its own process (the environment carries PYTHONPATH); Speak
    MP3s go to a directory of their own."""
    out_dir = server.data_dir / "device-out"
    return subprocess.run(
        [sys.executable, "-m", "opencic.cli.main", "device", "--server", server.url,
         "--out-dir", str(out_dir), *args],
        check=False, capture_output=True, text=True, timeout=90,
        env={k: v for k, v in os.environ.items() if not k.startswith("OPENCIC_")})


def assert_no_secrets(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr, secret


async def login_code(server: ServerHandle, a: Account, dev: str) -> str:
    """What a user gets from the login page (the companion-app step, B-AT-01)."""
    client = await server.connect()
    try:
        resp = await sign_in(client, a, a.fields(dev))
        assert resp.status == 200, resp.body
        return code_of(resp)
    finally:
        await client.close()


@pytest.mark.parametrize("backend_server", ["sqlite"], indirect=True)
def test_cli_login_code_then_saved_tokens_then_logout(
        backend_server: ServerHandle, tmp_path: Path) -> None:
    server = backend_server
    a = Account(server)
    dev = device()
    path = tmp_path / "kitchen.json"
    code = run(login_code(server, a, dev))
    first = device_cli(server, "--auth-file", str(path), "--client-id", a.client_id,
                       "--client-secret", a.secret, "--device-id", dev, "--model-id", MODEL,
                       "--code", code, "--text", "hello")
    assert first.returncode == 0, first.stderr
    assert "SpeechSynthesizer.Speak" in first.stdout
    assert f"device {dev!r} authorised" in first.stderr and str(path) in first.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pair = saved(path)
    assert_no_secrets(first, a.secret, code, pair["access_token"], pair["refresh_token"])

    # Another process, later: the file and the secret are enough; no code, no new pair.
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(a.secret + "\n")  # out of ps: --client-secret-file
    again = device_cli(server, "--auth-file", str(path), "--client-secret-file", str(secret_file),
                       "--text", "what time is it", "-v")
    assert again.returncode == 0, again.stderr
    assert "SpeechSynthesizer.Speak" in again.stdout
    assert saved(path) == pair and grants(server, dev) == 1
    assert_no_secrets(again, a.secret, pair["access_token"], pair["refresh_token"])

    # The code was used once; obtaining again into a file that holds tokens is refused.
    refused = device_cli(server, "--auth-file", str(path), "--client-secret", a.secret,
                         "--code", code)
    assert refused.returncode == 2 and "already holds the tokens" in refused.stderr

    out = device_cli(server, "--auth-file", str(path), "--client-secret", a.secret, "--logout")
    assert out.returncode == 0, out.stderr
    assert "logged out" in out.stderr and not path.exists()
    # No lock file or temporary file left either.
    assert list(tmp_path.iterdir()) == [secret_file]
    assert_no_secrets(out, a.secret, pair["access_token"], pair["refresh_token"])
    assert run(directives_status(server, pair["access_token"])) == 401
    twice = device_cli(server, "--auth-file", str(path), "--client-secret", a.secret, "--logout")
    assert twice.returncode == 2 and "does not exist" in twice.stderr


def test_cli_account_token_then_expiry_rotates_the_file_and_guest(
        short_server: ServerHandle, tmp_path: Path) -> None:
    a = Account(short_server)
    dev = device()
    path = tmp_path / "speaker.json"
    first = device_cli(short_server, "--auth-file", str(path), "--client-id", a.client_id,
                       "--client-secret", a.secret, "--device-id", dev, "--model-id", MODEL,
                       "--account-token", a.account_token, "--text", "hello")
    assert first.returncode == 0, first.stderr
    assert_no_secrets(first, a.secret, a.account_token)
    before = saved(path)
    time.sleep(SHORT_TTL + 0.5)  # the saved access token has expired

    later = device_cli(short_server, "--auth-file", str(path), "--client-secret", a.secret,
                       "--text", "hello", "-v")
    assert later.returncode == 0, later.stderr
    after = saved(path)
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]
    assert "access token refreshed" in later.stderr
    assert_no_secrets(later, a.secret, before["refresh_token"], after["access_token"],
                      after["refresh_token"])

    # A guest code (request_vu=Y, no account, B-AT-04) for another device.
    guest_dev = device()
    guest_path = tmp_path / "guest.json"
    guest = device_cli(short_server, "--auth-file", str(guest_path), "--client-id", a.client_id,
                       "--client-secret", a.secret, "--device-id", guest_dev,
                       "--guest", "--text", "hello")
    assert guest.returncode == 0, guest.stderr
    assert "authorised as a guest" in guest.stderr

    async def grant(store: Store) -> Any:
        return await store.tokens.lookup(saved(guest_path)["access_token"])

    found = short_server.with_store(grant)
    assert found is not None and found.guest and found.device_id == guest_dev


@pytest.mark.parametrize("backend_server", ["sqlite"], indirect=True)
def test_cli_auth_api_errors_exit_1_with_the_servers_error(
        backend_server: ServerHandle, tmp_path: Path) -> None:
    a = Account(backend_server)
    path = tmp_path / "x.json"
    common = ["--auth-file", str(path), "--client-id", a.client_id, "--client-secret", a.secret,
              "--device-id", device(), "--text", "hello"]
    bad_code = device_cli(backend_server, *common, "--code", "no-such-code")
    assert bad_code.returncode == 1
    assert "HTTP 400 invalid_grant" in bad_code.stderr and not path.exists()
    bad_account = device_cli(backend_server, *common, "--account-token", "wrong")
    assert bad_account.returncode == 1
    assert "HTTP 403 access_denied" in bad_account.stderr
    assert "the account token is invalid" in bad_account.stderr
    assert_no_secrets(bad_account, a.secret)
    bad_secret = device_cli(backend_server, *common[:4], "--client-secret", "wrong",
                            *common[6:], "--guest")
    assert bad_secret.returncode == 1 and "invalid_client" in bad_secret.stderr


# ---------------------------------------------------------------------------- usage


def exit_status(main: Any, argv: list[str]) -> Any:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return exc.code


def test_cli_usage_errors_exit_2_and_a_damaged_file_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Checked before any connection: no server needed."""
    from opencic.cli.main import main

    missing = str(tmp_path / "missing.json")
    held = tmp_path / "held.json"
    TokenFile(held).save(SavedTokens("c1", "d1", "m1", TokenSet("a", "r", time.time() + 99)))
    server = ["--server", "http://127.0.0.1:9"]
    empty = tmp_path / "empty-secret"
    empty.write_text("\n")
    cases: list[tuple[list[str], str]] = [
        (["--code", "X"], "--code needs --auth-file"),
        (["--client-secret", "S", "--guest"], "need --auth-file"),
        (["--auth-file", missing, "--token", "T"], "two ways to authenticate"),
        (["--auth-file", missing, "--code", "X", "--guest"], "not allowed with"),
        (["--auth-file", missing, "--logout", "--text", "hi"], "takes no --text"),
        (["--auth-file", missing, "--client-secret", "S"], "does not exist yet"),
        (["--auth-file", missing, "--client-secret", "S", "--logout"], "no tokens to revoke"),
        (["--auth-file", missing, "--client-secret", "S", "--code", "X", "--client-id", "c"],
         "needs --device-id"),
        (["--auth-file", missing, "--code", "X", "--client-id", "c", "--device-id", "d"],
         "needs --client-secret"),
        (["--auth-file", str(held), "--client-secret", "S", "--account-token", "T"],
         "already holds the tokens of device 'd1'"),
        (["--auth-file", str(held), "--client-secret", "S", "--device-id", "d2"],
         "--device-id 'd2' does not match"),
        (["--auth-file", str(held), "--client-secret", "S", "--auth-url", "ftp://x"],
         "auth server must be http(s)"),
        (["--auth-file", str(held), "--client-secret", "S", "--client-secret-file", missing],
         "not allowed with"),
        (["--auth-file", str(held), "--client-secret-file", missing],
         f"cannot read --client-secret-file {missing}"),
        (["--auth-file", str(held), "--client-secret-file", str(empty)], "is empty"),
    ]
    for argv, message in cases:
        assert exit_status(main, ["device", *server, *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)

    damaged = tmp_path / "damaged.json"
    damaged.write_text('{"version": 1, "access_token": ')
    assert main(["device", *server, "--auth-file", str(damaged), "--client-secret", "S"]) == 1
    err = capsys.readouterr().err
    assert "is not a valid token file" in err and str(damaged) in err
    assert damaged.read_text() == '{"version": 1, "access_token": '  # kept as it was


def test_cli_explains_terms_and_withdrawn_accounts(tmp_path: Path) -> None:
    """B-AT-02/03: what the user must do, in the message (OpenCIC never sends 423)."""
    from opencic.cli.device_auth import describe

    terms = AuthAPIError(451, None, None, {"redirect_uri": "https://cic.example/terms?code=c"})
    assert "open https://cic.example/terms?code=c, then run the command again" in \
        describe(terms, None)
    assert "one month after the withdrawal" in describe(AuthAPIError(423, None, None), None)
    held = tmp_path / "held.json"
    held.write_text("{}")
    stale = describe(AuthAPIError(400, "invalid_grant", "already used"), held)
    assert "HTTP 400 invalid_grant: already used" in stale
    assert str(held) in stale and "remove the file" in stale
