"""The companion-app step for headless devices (auth.md §3.1, right column): a small
login page at ``<prefix>/login`` where a user signs in with their name and password,
in any browser, and is shown the authorization code to type into the device.

``GET <prefix>/login?client_id=…&device_id=…&model_id=…&state=…`` renders the form;
``POST <prefix>/login`` signs in and issues the code exactly as ``/authorize`` does
(:meth:`AuthService.issue_code`; with ``auth_require_terms`` the page links to the
terms page first). Clients have no registered ``redirect_uri`` here, so the code is
always shown, never redirected.

CSRF: *signed* tokens bound to a cookie. The GET sets a random session cookie
(``HttpOnly; SameSite=Strict``, ``Secure`` + ``__Host-`` prefix over TLS) and puts
``issued.nonce.HMAC(secret, session, issued, nonce, form parameters)`` in a hidden
field; the POST must carry both, matching, within :data:`CSRF_TTL_SECONDS`, and each
token works once. The server secret lives in ``<data dir>/login.secret`` (0600), so a
plain double-submit's weakness — anyone who can plant a cookie (a sibling subdomain, a
plain-HTTP hop) picks the token too — does not apply: tokens cannot be minted without
the secret, a token of one session is worthless with another session's cookie, and
the hidden client/device/model/state fields cannot be altered. SameSite=Strict makes a
cross-site POST arrive without the cookie at all.

Passwords: checked with the salted scrypt of ``state/hashing.py`` in a thread
(constant-time compare; an unknown name costs the same). Failures are rate-limited per
user name and per peer address (:data:`MAX_FAILURES_PER_USER`,
:data:`MAX_FAILURES_PER_PEER` within :data:`FAILURE_WINDOW_SECONDS`): a slot is taken
*before* the check, so concurrent guesses cannot overshoot, and given back on success.

Every answer carries ``Cache-Control: no-store``, a CSP without scripts or external
assets, ``X-Frame-Options: DENY``; every reflected value is HTML-escaped. Nothing the
user typed, no code and no token is logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import os
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..auth.service import AuthError, AuthService
from .client_address import ClientAddress
from .limits import RateLimiter

log = logging.getLogger("opencic.server")

Scope = dict[str, Any]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SECRET_FILE = "login.secret"
CSRF_TTL_SECONDS = 15 * 60
COOKIE_NAME = "opencic_login"
SECURE_COOKIE_NAME = "__Host-opencic_login"
FORM_FIELDS = ("client_id", "device_id", "model_id", "state")
MAX_PASSWORD_LENGTH = 1024
FAILURE_WINDOW_SECONDS = 15 * 60.0
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_PEER = 20

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"cache-control", b"no-store"),
    (b"content-security-policy",
     b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]

GENERIC_FAILURE = "Wrong user name or password."
RATE_LIMITED = "Too many failed sign-ins. Try again in a few minutes."
CSRF_FAILURE = "This form has expired or did not come from this server. Open the link again."


# ------------------------------------------------------------------ the server secret


def load_secret(data_dir: Path) -> bytes:
    """The CSRF signing key, made once (256 random bits) and kept mode 0600."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # atomic, and never replaces a secret already there
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    value = bytes.fromhex(path.read_text().strip())
    if len(value) < 16:
        raise ValueError(f"{path}: the login secret is too short; delete it to make a new one")
    return value


# ------------------------------------------------------------------ CSRF tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class CsrfTokens:
    def __init__(self, secret: bytes, ttl: float = CSRF_TTL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self.ttl = ttl
        self.clock = clock
        self._used: dict[str, float] = {}  # nonce -> when it would expire anyway

    @staticmethod
    def new_session() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def valid_session(value: str | None) -> bool:
        return value is not None and 32 <= len(value) <= 64 and all(
            c.isalnum() or c in "-_" for c in value)

    def _mac(self, session: str, issued: int, nonce: str, bound: tuple[str, ...]) -> str:
        message = "\x00".join(("opencic-login-v1", session, str(issued), nonce, *bound))
        return _b64(hmac.new(self._secret, message.encode(), hashlib.sha256).digest())

    def issue(self, session: str, bound: tuple[str, ...]) -> str:
        issued = int(self.clock())
        nonce = secrets.token_urlsafe(16)
        return f"{issued}.{nonce}.{self._mac(session, issued, nonce, bound)}"

    def consume(self, token: str, session: str | None, bound: tuple[str, ...]) -> bool:
        """True once for a token issued to this session and form; it is then spent."""
        if not self.valid_session(session) or len(token) > 200:
            return False
        assert session is not None
        issued_text, _, rest = token.partition(".")
        nonce, _, mac = rest.partition(".")
        # ASCII only: str.isdigit() accepts digits int() refuses ("²"), and
        # compare_digest raises on non-ASCII str; either would be a 500, not a 403.
        if not (token.isascii() and issued_text.isdigit() and nonce and mac):
            return False
        issued, now = int(issued_text), self.clock()
        if not (now - self.ttl <= issued <= now + 60):
            return False
        if not hmac.compare_digest(mac.encode(), self._mac(session, issued, nonce, bound).encode()):
            return False
        if len(self._used) > 10_000:
            self._used = {n: t for n, t in self._used.items() if t > now}
        if nonce in self._used:
            return False
        self._used[nonce] = issued + self.ttl
        return True


# ------------------------------------------------------------------ failure rate limit


# ------------------------------------------------------------------ HTML

STYLE = ("body{font-family:system-ui,sans-serif;max-width:28em;margin:2em auto;padding:0 1em}"
         "label,input,button{display:block;width:100%;box-sizing:border-box;margin:.3em 0}"
         "input,button{padding:.5em;font-size:1em}.error{color:#a00}"
         "code{font-size:1.3em;word-break:break-all;background:#eee;padding:.3em;display:block}"
         "dt{font-weight:bold}")


def _e(value: str) -> str:
    return html.escape(value, quote=True)


def _page(title: str, content: str) -> bytes:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n"
            f"<body><h1>{_e(title)}</h1>\n{content}\n</body></html>\n").encode()


def _device_facts(fields: dict[str, str]) -> str:
    return (f"<dl><dt>Device</dt><dd>{_e(fields.get('device_id', ''))}</dd>"
            f"<dt>Model</dt><dd>{_e(fields.get('model_id', ''))}</dd>"
            f"<dt>Product</dt><dd>{_e(fields.get('client_id', ''))}</dd></dl>")


def form_page(action: str, fields: dict[str, str], csrf: str, *, username: str = "",
              error: str | None = None) -> bytes:
    hidden = "".join(f'<input type="hidden" name="{name}" value="{_e(fields.get(name, ""))}">'
                     for name in FORM_FIELDS)
    problem = f'<p class="error" role="alert">{_e(error)}</p>' if error else ""
    return _page("Sign in to connect your device", f"""{_device_facts(fields)}
{problem}<form method="post" action="{_e(action)}">
{hidden}<input type="hidden" name="csrf_token" value="{_e(csrf)}">
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" required value="{_e(username)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>""")


def code_page(fields: dict[str, str], code: str, terms_url: str | None) -> bytes:
    terms = ""
    if terms_url is not None:
        terms = (f'<p>Before the device can use this code, <a href="{_e(terms_url)}">read and '
                 "agree to the terms of use</a>.</p>")
    return _page("Your device code", f"""{_device_facts(fields)}
<p>Enter this code on your device. It works once and expires in a few minutes.</p>
<code>{_e(code)}</code>
{terms}""")


def message_page(title: str, message: str, retry_url: str | None = None) -> bytes:
    retry = f'<p><a href="{_e(retry_url)}">Open the sign-in page again</a></p>' if retry_url else ""
    return _page(title, f'<p class="error" role="alert">{_e(message)}</p>{retry}')


# ------------------------------------------------------------------ the page


class LoginPage:
    def __init__(self, service: AuthService, path: str, data_dir: Path, *, secure: bool,
                 terms_url: Callable[[Scope, str], str],
                 client_address: ClientAddress | None = None) -> None:
        self.service = service
        self.client_address = client_address or ClientAddress()
        self.path = path
        self.secure = secure
        self.terms_url = terms_url
        self.csrf = CsrfTokens(load_secret(data_dir))
        self.per_user = RateLimiter(MAX_FAILURES_PER_USER, FAILURE_WINDOW_SECONDS)
        self.per_peer = RateLimiter(MAX_FAILURES_PER_PEER, FAILURE_WINDOW_SECONDS)

    @property
    def cookie_name(self) -> str:
        return SECURE_COOKIE_NAME if self.secure else COOKIE_NAME

    def _set_cookie(self, session: str) -> tuple[bytes, bytes]:
        if self.secure:  # __Host-: Secure, Path=/, no Domain: no subdomain can set it
            attrs = "Path=/; Secure"
        else:
            attrs = f"Path={self.path}"
        value = (f"{self.cookie_name}={session}; {attrs}; HttpOnly; SameSite=Strict; "
                 f"Max-Age={CSRF_TTL_SECONDS}")
        return (b"set-cookie", value.encode())

    def _session(self, scope: Scope) -> str | None:
        # HTTP/2 may split Cookie into several fields (RFC 9113 §8.2.3).
        for key, value in scope.get("headers", ()):
            if key != b"cookie":
                continue
            text: str = value.decode("latin-1")
            for part in text.split(";"):
                name, _, val = part.strip().partition("=")
                if name == self.cookie_name and CsrfTokens.valid_session(val):
                    return val
        return None

    def _retry_url(self, fields: dict[str, str]) -> str | None:
        if not all(fields.get(n) for n in FORM_FIELDS):
            return None
        return f"{self.path}?{urllib.parse.urlencode({n: fields[n] for n in FORM_FIELDS})}"

    async def handle(self, scope: Scope, send: Send, params: dict[str, str],
                     state: dict[str, Any]) -> None:
        fields = {n: params.get(n, "") for n in FORM_FIELDS}
        method = scope.get("method", "GET")
        session = self._session(scope)
        # CSRF first: a forged request learns nothing else, not even the checks below.
        if method == "POST" and not self.csrf.consume(
                params.get("csrf_token", ""), session, tuple(fields[n] for n in FORM_FIELDS)):
            await self.answer(send, state, 403, message_page(
                "Sign-in refused", CSRF_FAILURE, self._retry_url(fields)))
            return
        try:
            client_id, device_id, model_id, st = await self.service.check_request(params)
        except AuthError as exc:
            await self.answer(send, state, exc.status, message_page(
                "Cannot sign in", f"This link is not valid: {exc.description}."))
            return
        state["device"] = device_id[:128]
        extra: list[tuple[bytes, bytes]] = []
        if session is None:
            session = self.csrf.new_session()
            extra.append(self._set_cookie(session))
        bound = tuple(fields[n] for n in FORM_FIELDS)
        if method != "POST":
            await self.answer(send, state, 200, form_page(
                self.path, fields, self.csrf.issue(session, bound)), extra)
            return

        username = params.get("username", "")
        password = params.get("password", "")

        async def again(status: int, message: str,
                        headers: list[tuple[bytes, bytes]] | None = None) -> None:
            assert session is not None
            page = form_page(self.path, fields, self.csrf.issue(session, bound),
                             username=username[:128], error=message)
            await self.answer(send, state, status, page, extra + (headers or []))

        peer = "peer:" + self.client_address.of(scope)
        user_key = "user:" + username[:256]
        now = time.monotonic()
        if self.per_user.full(user_key, now) or self.per_peer.full(peer, now):
            log.warning("login page: sign-in rate-limited", extra={"device": device_id})
            await again(429, RATE_LIMITED,
                        [(b"retry-after", str(int(FAILURE_WINDOW_SECONDS)).encode())])
            return
        # Taken before the (slow) check, so concurrent guesses cannot overshoot.
        self.per_user.take(user_key, now)
        self.per_peer.take(peer, now)
        user = None
        if username and password and len(password) <= MAX_PASSWORD_LENGTH:
            user = await self.service.store.users.verify_password(username, password)
        if user is None:
            log.info("login page: sign-in failed", extra={"device": device_id})
            await again(401, GENERIC_FAILURE)
            return
        self.per_user.give_back(user_key, now)
        self.per_peer.give_back(peer, now)
        result = await self.service.issue_code(user, client_id, device_id, model_id, st,
                                               lambda c: self.terms_url(scope, c))
        log.info("login page: code issued", extra={"device": device_id})
        terms = result.body.get("redirect_uri") if result.status == 451 else None
        await self.answer(send, state, 200, code_page(fields, result.body["code"], terms), extra)

    @staticmethod
    async def answer(send: Send, state: dict[str, Any], status: int, body: bytes,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
        state["status"] = status
        head = [(b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS,
                *(headers or [])]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body, "more_body": False})
