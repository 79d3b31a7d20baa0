"""Security rules end to end, over real sockets against real `opencic serve` processes:
size limits on every path (bodies and headers), the auth rate limits, the admin API's
own credential and per-device isolation.

Oversized input is refused in the error form of its path (CIC: multipart
``System.Exception`` 400, B-ST-01/B-ST-03; auth API: JSON ``{"error", ...}``; admin:
JSON ``{"error": {"code", "description"}}``; login page: HTML), without the server
reading unbounded data, and the device's other streams (its downchannel on the same
connection) survive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Iterator
from typing import Any

import h2.exceptions
import pytest
from support.cic import (
    CONTENT_TYPE,
    auth_headers,
    event_body,
    event_json,
    exception_of,
    open_downchannel,
    part,
    read_parts,
    with_device,
)
from support.rawh2 import RawH2, Response
from support.server import ServerHandle, serving

from opencic.state.base import Store

PREFIX = "/auth/v1"
FORM = "application/x-www-form-urlencoded"
MAX_EVENT_BYTES = 4 * 1024 * 1024  # the default max_event_bytes
MAX_ADMIN_BODY = 1024 * 1024
MAX_AUTH_BODY = 16 * 1024
ENHANCE_YOUR_CALM = 0xB


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def device() -> str:
    return f"sec-{uuid.uuid4().hex[:12]}"


def admin_token(server: ServerHandle) -> str:
    return (server.data_dir / "admin.token").read_text().strip()


def hello_event() -> bytes:
    return event_body(event_json("TextRecognizer", "Recognize", {"text": "hello"},
                                 str(uuid.uuid4())))


class Sender:
    """Streams ``total`` bytes on a stream in the background, counting what the
    server's flow control let through, and stops quietly when the stream is reset."""

    def __init__(self, client: RawH2, sid: int, first: bytes, chunk: bytes, total: int) -> None:
        self.sent = 0
        self.client, self.sid = client, sid
        self.task = asyncio.create_task(self._run(first, chunk, total))

    async def _run(self, first: bytes, chunk: bytes, total: int) -> None:
        # Reset by the server, or its window stays shut: either way, refused.
        with contextlib.suppress(h2.exceptions.H2Error, TimeoutError, ConnectionError):
            await self.client.send(self.sid, first)
            self.sent += len(first)
            while self.sent < total:
                await self.client.send(self.sid, chunk)
                self.sent += len(chunk)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        if not self.client.streams[self.sid].ended:
            await self.client.reset(self.sid)


async def still_serving(client: RawH2, token: str, sid: int) -> None:
    """The device's downchannel (``sid``) is open and its connection answers events."""
    await client.ping()
    resp = await client.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE),
                                hello_event())
    assert resp.status == 200, resp.body[:300]
    st = client.streams[sid]
    assert st.status == 200 and not st.ended and st.reset is None



def auth_error(resp: Response, status: int) -> str:
    assert resp.status == status, (resp.status, resp.body[:300])
    assert resp.headers["content-type"] == "application/json"
    doc = json.loads(resp.body)
    assert isinstance(doc["error"], str) and doc["error_description"]
    return str(doc["error_description"])


# ------------------------------------------------------------------ body limits: CIC


def test_oversized_event_bodies_get_400_and_the_downchannel_survives(
        cic_server: ServerHandle) -> None:
    """max_event_bytes: a declared Content-Length over it is refused before any body is
    read; a body of unknown length is cut at the limit (the server stops reading: the
    sender cannot get much more than one flow-control window past it). Both are 400 +
    System.Exception(400) (B-ST-01, B-EV-04); the downchannel on the connection stays."""
    async def go(client: RawH2, token: str, sid: int) -> None:
        # Declared too large: answered with no body byte sent.
        headers = {**auth_headers(token, CONTENT_TYPE), "content-length": str(MAX_EVENT_BYTES + 1)}
        ev = await client.start("POST", "/v1/events", headers)
        resp = await client.response(ev, timeout=10)
        assert resp.status == 400
        assert str(MAX_EVENT_BYTES) in exception_of(resp)["description"]
        if not client.streams[ev].ended:
            await client.reset(ev)
        await still_serving(client, token, sid)

        # Unknown length: a valid event followed by endless junk parts (not a
        # Recognize, so no audio limit applies; only the body limit stops it).
        ev = await client.start("POST", "/v1/events", auth_headers(token, CONTENT_TYPE))
        first = part(json.dumps(event_json("TextRecognizer", "Recognize", {"text": "hi"},
                                           str(uuid.uuid4()))).encode())
        junk = part(b"\x00" * 65536, "application/octet-stream", "audio")
        sender = Sender(client, ev, first, junk, 64 * MAX_EVENT_BYTES)
        resp = await client.response(ev, timeout=30)
        await sender.stop()
        assert resp.status == 400
        description = exception_of(resp)["description"]
        assert "event request body is larger than" in description, description
        assert sender.sent < MAX_EVENT_BYTES + 8 * 1024 * 1024, sender.sent
        await still_serving(client, token, sid)

    run(with_device(cic_server, go))


def test_downchannel_request_with_a_body(cic_server: ServerHandle) -> None:
    """B-DC-01: GET /v1/directives has no body. A declared one -> 400 + System.Exception
    (B-ST-03 allows 400 on the downchannel), and the device's open downchannel is not
    replaced; one streamed without Content-Length ends that downchannel cleanly instead
    of being read for ever."""
    async def go(client: RawH2, token: str, sid: int) -> None:
        headers = {**auth_headers(token), "content-length": "5"}
        dc = await client.start("GET", "/v1/directives", headers)
        resp = await client.response(dc, timeout=10)
        assert resp.status == 400 and "no body" in exception_of(resp)["description"]
        if not client.streams[dc].ended:
            await client.reset(dc)
        await still_serving(client, token, sid)

        other = cic_server.create_token(device())
        dc = await client.start("GET", "/v1/directives", auth_headers(other))
        sender = Sender(client, dc, b"x" * 1024, b"x" * 65536, 16 * 1024 * 1024)
        st = await client.wait(dc, lambda s: s.ended, timeout=10)
        await sender.stop()
        # RST_STREAM(NO_ERROR) after a complete response just stops the upload (RFC 9113 §8.1).
        assert st.status == 200 and not st.reset
        parts, closed = read_parts(st.headers["content-type"], bytes(st.body))
        assert [p.qualified_name for p in parts] == ["Clova.Hello"] and closed
        assert sender.sent < 8 * 1024 * 1024
        await still_serving(client, token, sid)

    run(with_device(cic_server, go))


def test_ping_with_a_body_is_not_read(cic_server: ServerHandle) -> None:
    """B-KA-03: /ping answers 204 whatever comes with it; a body is never read."""
    async def go(client: RawH2, token: str, sid: int) -> None:
        ping = await client.start("GET", "/ping", auth_headers(token))
        sender = Sender(client, ping, b"x" * 1024, b"x" * 65536, 64 * 1024 * 1024)
        st = await client.wait(ping, lambda s: s.status is not None, timeout=10)
        await sender.stop()
        assert st.status == 204
        assert sender.sent < 8 * 1024 * 1024
        await still_serving(client, token, sid)

    run(with_device(cic_server, go))


# ------------------------------------------------------------------ body limits: admin, auth


def test_oversized_admin_push_is_a_json_400(cic_server: ServerHandle) -> None:
    """The admin API answers in its own JSON error form; a device's downchannel on the
    same connection survives and a valid push still reaches it."""
    admin = {"authorization": f"Bearer {admin_token(cic_server)}",
             "content-type": "application/json"}

    async def go(client: RawH2, token: str, sid: int) -> None:
        push = await client.start("POST", "/admin/v1/push",
                                  {**admin, "content-length": str(MAX_ADMIN_BODY + 1)})
        resp = await client.response(push, timeout=10)
        if not client.streams[push].ended:
            await client.reset(push)
        assert resp.status == 400, resp.body
        error = json.loads(resp.body)["error"]
        assert error["code"] == 400 and "larger than" in error["description"]

        push = await client.start("POST", "/admin/v1/push", admin)
        sender = Sender(client, push, b'{"devices": "all", "directives": [' + b" " * 1000,
                        b" " * 65536, 64 * MAX_ADMIN_BODY)
        resp = await client.response(push, timeout=30)
        await sender.stop()
        assert resp.status == 400 and "larger than" in json.loads(resp.body)["error"]["description"]
        assert sender.sent < MAX_ADMIN_BODY + 8 * 1024 * 1024

        await still_serving(client, token, sid)
        body = json.dumps({"devices": "all", "directives": [
            {"namespace": "Notifier", "name": "ClearIndicator", "payload": {}}]}).encode()
        resp = await client.request("POST", "/admin/v1/push", admin, body)
        assert resp.status == 200, resp.body
        await client.wait(sid, lambda s: b"ClearIndicator" in s.body)

    run(with_device(cic_server, go))


def test_oversized_auth_requests_get_the_auth_error_form(cic_server: ServerHandle) -> None:
    """/token and /authorize: bodies over 16 KiB (declared or streamed) and query
    strings over 8 KiB -> 400 JSON; the login page answers the same in HTML. The device
    streams on the same connection survive."""
    async def go(client: RawH2, token: str, sid: int) -> None:
        form = {"content-type": FORM}
        # Declared: refused before the body is sent.
        st = await client.start("POST", f"{PREFIX}/token",
                                {**form, "content-length": str(10 * 1024 * 1024)})
        resp = await client.response(st, timeout=10)
        if not client.streams[st].ended:
            await client.reset(st)
        assert "larger than" in auth_error(resp, 400)
        # Streamed without a length: read (and dropped) up to a bound, then refused.
        st = await client.start("POST", f"{PREFIX}/token", form)
        sender = Sender(client, st, b"grant_type=", b"a" * 65536, 64 * 1024 * 1024)
        resp = await client.response(st, timeout=30)
        await sender.stop()
        assert "larger than" in auth_error(resp, 400)
        assert sender.sent < 16 * 1024 * 1024
        # Query strings.
        query = urllib.parse.urlencode({"client_id": "c", "state": "s" * 9000})
        resp = await client.request("GET", f"{PREFIX}/authorize?{query}")
        assert "query string" in auth_error(resp, 400)
        resp = await client.request("POST", f"{PREFIX}/token?{query}", form, b"a=b")
        assert "query string" in auth_error(resp, 400)
        # The login page: its own (HTML) error page, with its security headers.
        resp = await client.request("POST", f"{PREFIX}/login", form,
                                    b"username=x&password=" + b"p" * 40_000)
        assert resp.status == 400 and b"larger than" in resp.body
        assert resp.headers["content-type"].startswith("text/html")
        assert resp.headers["cache-control"] == "no-store"
        resp = await client.request("GET", f"{PREFIX}/login?{query}")
        assert resp.status == 400 and b"query string" in resp.body
        await still_serving(client, token, sid)

    run(with_device(cic_server, go))


# ------------------------------------------------------------------ header limits


def test_oversized_headers_are_refused_by_the_http2_server(cic_server: ServerHandle) -> None:
    """max_header_bytes (default 16 KiB, RFC 9113 §6.5.2 size): granian answers a
    header list over it with 431 on that stream alone (the connection and its
    downchannel go on); a list over four times the bound (here a 64 KiB value, or
    10 000 headers) closes that one connection with GOAWAY(ENHANCE_YOUR_CALM). The
    server and every other connection carry on; nothing hangs."""
    async def go(client: RawH2, token: str, sid: int) -> None:
        many = {f"x-h{i}": "v" for i in range(1000)}  # ~38 KB counted
        resp = await client.request("GET", "/ping", many, timeout=10)
        assert resp.status == 431
        resp = await client.request("POST", "/v1/events",
                                    {**auth_headers(token, CONTENT_TYPE), "x-pad": "a" * 20_000},
                                    hello_event(), timeout=10)
        assert resp.status == 431
        await still_serving(client, token, sid)

        for huge in ({"x-big": "a" * 65536}, {f"x-h{i}": "v" for i in range(10_000)}):
            other = await cic_server.connect()
            try:
                other_token = cic_server.create_token(device())
                other_sid = await open_downchannel(other, other_token)
                with pytest.raises(ConnectionError):
                    await other.request("GET", "/ping", huge, timeout=10)
                assert other.goaway is not None
                assert other.goaway.error_code == ENHANCE_YOUR_CALM
                assert other.streams[other_sid].status == 200
            finally:
                await other.close()
            await still_serving(client, token, sid)
        fresh = await cic_server.connect()
        try:
            assert (await fresh.request("GET", "/ping", timeout=10)).status == 204
        finally:
            await fresh.close()

    run(with_device(cic_server, go))


# ------------------------------------------------------------------ rate limits

RATE_LIMIT = 4
PROXY = "127.0.0.9"  # the limited server's trusted reverse proxy (a loopback address)


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """Small auth rate limits, and a header bound raised above the default."""
    with serving(tmp_path_factory.mktemp("limited"), env={
        "OPENCIC_AUTH_TOKEN_MAX_REQUESTS": str(RATE_LIMIT),
        "OPENCIC_AUTH_TOKEN_WINDOW_SECONDS": "60",
        "OPENCIC_MAX_HEADER_BYTES": str(128 * 1024),
        "OPENCIC_TRUSTED_PROXIES": PROXY,
    }) as handle:
        yield handle


async def token_call(server: ServerHandle, local_host: str, client_id: str,
                     endpoint: str = "token", forwarded_for: str | None = None) -> Response:
    client = await server.connect(local_host)
    try:
        body = urllib.parse.urlencode({"grant_type": "refresh_token", "client_id": client_id,
                                       "client_secret": "guess", "refresh_token": "r"})
        headers = {"content-type": FORM}
        if forwarded_for is not None:
            headers["x-forwarded-for"] = forwarded_for
        return await client.request("POST", f"{PREFIX}/{endpoint}", headers, body.encode())
    finally:
        await client.close()


def assert_rate_limited(resp: Response, who: str) -> None:
    assert who in auth_error(resp, 429)
    assert json.loads(resp.body)["error"] == "slow_down"
    assert 1 <= int(resp.headers["retry-after"]) <= 60


def test_auth_rate_limit_per_client_address(limited_server: ServerHandle) -> None:
    """auth_token_max_requests per client address on /token (whatever client_id it
    claims: inventing ids does not escape it) and, separately, on /authorize;
    429 with the auth API's JSON error and Retry-After. Other addresses go on."""
    async def go() -> None:
        for i in range(RATE_LIMIT):
            resp = await token_call(limited_server, "127.0.0.2", f"made-up-{i}")
            auth_error(resp, 400)
        assert_rate_limited(await token_call(limited_server, "127.0.0.2", "made-up-x"),
                            "from this address")
        auth_error(await token_call(limited_server, "127.0.0.3", "made-up-x"), 400)
        # /authorize has its own bucket: this address may still use it, up to the limit.
        for _ in range(RATE_LIMIT):
            resp = await token_call(limited_server, "127.0.0.2", "made-up-y", "authorize")
            assert resp.status in (400, 403), resp.body
        assert_rate_limited(await token_call(limited_server, "127.0.0.2", "made-up-z",
                                             "authorize"), "from this address")

    run(go())


def test_auth_rate_limit_per_client_id(limited_server: ServerHandle) -> None:
    """Guesses against one client_id spread over many addresses are bounded too."""
    victim = f"victim-{uuid.uuid4().hex[:8]}"

    async def go() -> None:
        for i in range(RATE_LIMIT):
            resp = await token_call(limited_server, f"127.0.1.{10 + i}", victim)
            auth_error(resp, 400)
        assert_rate_limited(await token_call(limited_server, "127.0.1.20", victim),
                            "for this client_id")
        auth_error(await token_call(limited_server, "127.0.1.20", "someone-else"), 400)

    run(go())


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
        limited_server: ServerHandle) -> None:
    """trusted_proxies: requests from the proxy count per X-Forwarded-For client (the
    entry the proxy appended, not what the client claimed before it); a peer that is
    not a trusted proxy cannot pick its own bucket with the header."""
    async def go() -> None:
        for i in range(RATE_LIMIT):
            resp = await token_call(limited_server, PROXY, f"fwd-{i}",
                                    forwarded_for=f"{i}.6.6.6, 203.0.113.5")
            auth_error(resp, 400)
        assert_rate_limited(await token_call(limited_server, PROXY, "fwd-x",
                                             forwarded_for="203.0.113.5"), "from this address")
        # Another client behind the same proxy goes on.
        auth_error(await token_call(limited_server, PROXY, "fwd-y",
                                    forwarded_for="203.0.113.6"), 400)
        # An untrusted peer's header is ignored: its own address is the bucket.
        for i in range(RATE_LIMIT):
            auth_error(await token_call(limited_server, "127.0.0.8", f"spoof-{i}",
                                        forwarded_for=f"198.51.100.{i}"), 400)
        assert_rate_limited(await token_call(limited_server, "127.0.0.8", "spoof-x",
                                             forwarded_for="198.51.100.77"), "from this address")

    run(go())


def test_header_bound_is_configurable(limited_server: ServerHandle) -> None:
    """With max_header_bytes = 128 KiB, a 64 KiB header value is served."""
    async def go() -> None:
        client = await limited_server.connect()
        try:
            resp = await client.request("GET", "/ping", {"x-big": "a" * 65536}, timeout=10)
            assert resp.status == 204
        finally:
            await client.close()

    run(go())


# ------------------------------------------------------------------ credentials, isolation


def test_admin_and_device_credentials_do_not_cross(cic_server: ServerHandle) -> None:
    """The admin API takes only the admin token (compared with hmac.compare_digest);
    CIC paths take only device access tokens: a device token or an account token on
    /admin/v1/push -> 401 JSON; the admin token or an account token as a device's
    bearer token on /v1/directives and /v1/events -> 401 + System.Exception (B-CN-04)."""
    device_token = cic_server.create_token(device())

    async def account(store: Store) -> str:
        user = await store.users.add(f"u-{uuid.uuid4().hex[:8]}")
        return await store.account_tokens.issue(user.user_id)

    account_token = cic_server.with_store(account)
    admin = admin_token(cic_server)
    body = json.dumps({"devices": "all", "directives": [
        {"namespace": "Notifier", "name": "ClearIndicator", "payload": {}}]}).encode()

    async def go() -> None:
        client = await cic_server.connect()
        try:
            # Non-ASCII too: compare_digest on such a str raises (it was a 500).
            for wrong in (device_token, account_token, "é" + admin[1:]):
                resp = await client.request("POST", "/admin/v1/push", {
                    "authorization": f"Bearer {wrong}", "content-type": "application/json"}, body)
                assert resp.status == 401
                assert json.loads(resp.body)["error"]["code"] == 401
            for wrong in (admin, account_token):
                resp = await client.request("GET", "/v1/directives", auth_headers(wrong))
                assert resp.status == 401 and exception_of(resp)["code"] == 401
                resp = await client.request("POST", "/v1/events",
                                            auth_headers(wrong, CONTENT_TYPE), hello_event())
                assert resp.status == 401 and exception_of(resp)["code"] == 401
            # The right ones still work.
            await open_downchannel(client, device_token)
            resp = await client.request("POST", "/admin/v1/push", {
                "authorization": f"Bearer {admin}", "content-type": "application/json"}, body)
            assert resp.status == 200
        finally:
            await client.close()

    run(go())


def test_devices_are_isolated(cic_server: ServerHandle) -> None:
    """A device's token acts for that device only: its events cannot ride another
    device's downchannel (412, B-EV-02), what it triggers never reaches the other
    device's downchannel, and an admin push to one device reaches only that one."""
    a_id, b_id = device(), device()
    a_token, b_token = cic_server.create_token(a_id), cic_server.create_token(b_id)

    async def go() -> None:
        a, b = await cic_server.connect(), await cic_server.connect()
        try:
            a_sid = await open_downchannel(a, a_token)
            b_sid = await open_downchannel(b, b_token)
            # A's token on B's connection: B's downchannel is not A's.
            resp = await b.request("POST", "/v1/events", auth_headers(a_token, CONTENT_TYPE),
                                   hello_event())
            assert resp.status == 412 and exception_of(resp)["code"] == 412
            await still_serving(a, a_token, a_sid)
            resp = await a.request("POST", "/admin/v1/push", {
                "authorization": f"Bearer {admin_token(cic_server)}",
                "content-type": "application/json"}, json.dumps({
                    "devices": [a_id], "directives": [
                        {"namespace": "Notifier", "name": "ClearIndicator", "payload": {}}]}).encode())
            assert resp.status == 200 and json.loads(resp.body)["delivered"] == 1
            await a.wait(a_sid, lambda s: b"ClearIndicator" in s.body)
            await b.ping()
            await asyncio.sleep(0.2)
            parts, _ = read_parts(b.streams[b_sid].headers["content-type"],
                                  bytes(b.streams[b_sid].body), False)
            assert [p.qualified_name for p in parts] == ["Clova.Hello"]
        finally:
            await a.close()
            await b.close()

    run(go())


def test_non_ascii_csrf_token_is_a_403_not_a_500(cic_server: ServerHandle) -> None:
    """The login page's CSRF check compares in constant time without tripping on
    characters hmac.compare_digest or int() refuse."""
    client_id = f"c-{uuid.uuid4().hex[:8]}"

    async def register(store: Store) -> None:
        await store.clients.add(client_id, "s3cret-for-csrf", name="csrf")

    cic_server.with_store(register)
    fields = {"client_id": client_id, "device_id": device(), "model_id": "m", "state": "s"}

    async def go() -> None:
        client = await cic_server.connect()
        try:
            form = await client.request("GET", f"{PREFIX}/login?{urllib.parse.urlencode(fields)}")
            assert form.status == 200, form.body
            cookie = form.headers["set-cookie"].split(";", 1)[0]
            for csrf in (f"{int(time.time())}.nonce.é", "\u00b2.nonce.mac"):
                data = {**fields, "username": "u", "password": "p", "csrf_token": csrf}
                resp = await client.request("POST", f"{PREFIX}/login",
                                            {"content-type": FORM, "cookie": cookie},
                                            urllib.parse.urlencode(data).encode())
                assert resp.status == 403, (csrf, resp.status, resp.body[:200])
        finally:
            await client.close()

    run(go())
