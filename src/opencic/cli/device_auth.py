"""``opencic device --auth-file``: the simulator authorised through the auth API, as a
real device is (auth.md, B-CN-05, B-AT-01..04).

First run, with a code the user got from the login page (the companion-app step)::

    opencic device --auth-file kitchen.json --client-id ID --client-secret S \\
        --device-id kitchen --model-id m1 --code CODE --text "hello"

or with ``--account-token T`` (the simulator calls ``/authorize`` itself, as a
companion app would) or ``--guest`` (a guest code, ``request_vu=Y``). The pair is
saved in the file (JSON, mode 0600, replaced atomically) with the ids it belongs to,
so later runs need only the file and the secret::

    opencic device --auth-file kitchen.json --client-secret S --text "what time is it"

They refresh when the access token expires or is refused (401), and save each new pair
before using it. ``--logout`` revokes the pair (``grant_type=delete``) and removes the
file. Tokens, codes and secrets are never printed.

Exit codes: 2 for an impossible combination of options (or of options and the file's
state), 1 when the auth API refuses (its error is printed) or the file is unusable.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..client.auth import (
    DEFAULT_AUTH_PATH,
    AuthAPIError,
    AuthServerUnavailable,
    TokenFile,
    TokenFileError,
    TokenManager,
    request_code,
)
from ..client.errors import ClientError

DEFAULT_MODEL_ID = "OpenCIC"
# Everything that only means something with --auth-file (argparse dest -> flag).
_AUTH_ONLY = {"auth_url": "--auth-url", "client_id": "--client-id",
              "client_secret": "--client-secret", "client_secret_file": "--client-secret-file",
              "model_id": "--model-id", "code": "--code",
              "account_token": "--account-token", "guest": "--guest", "logout": "--logout"}


class UsageError(Exception):
    """An impossible request: printed, exit status 2."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "authorisation through the auth API (instead of --token)",
        "The tokens are kept in --auth-file and refreshed as needed; a first run obtains "
        "them with one of --code, --account-token or --guest.")
    g.add_argument("--auth-file", type=Path, metavar="PATH",
                   help="the device's token file (JSON, 0600): read, refreshed and rewritten")
    g.add_argument("--auth-url", metavar="URL",
                   help=f"auth API base URL (default: the server's origin + {DEFAULT_AUTH_PATH})")
    g.add_argument("--client-id", help="the product's client_id (default: from the file)")
    secret = g.add_mutually_exclusive_group()
    secret.add_argument("--client-secret", metavar="SECRET",
                        help="the product's client_secret (needed to refresh and to log out); "
                             "visible to other users in ps: prefer --client-secret-file")
    secret.add_argument("--client-secret-file", type=Path, metavar="PATH",
                        help="read the client_secret from the first line of this file")
    g.add_argument("--model-id",
                   help=f"the device's model_id (default: from the file, else {DEFAULT_MODEL_ID})")
    once = g.add_mutually_exclusive_group()
    once.add_argument("--code", help="exchange this authorization code (from the login page)")
    once.add_argument("--account-token", metavar="TOKEN",
                      help="get a code from /authorize with this user's account token, as a "
                           "companion app would (B-AT-01), and exchange it")
    once.add_argument("--guest", action="store_true",
                      help="get a guest code (/authorize with request_vu=Y, B-AT-04) and "
                           "exchange it")
    once.add_argument("--logout", action="store_true",
                      help="revoke the saved tokens (grant_type=delete), remove the file, exit")


def wanted(args: argparse.Namespace) -> bool:
    """Whether the auth API options are in use (else the simulator's older ways)."""
    return args.auth_file is not None or any(_given(args, dest) for dest in _AUTH_ONLY)


def _given(args: argparse.Namespace, dest: str) -> bool:
    value = getattr(args, dest, None)
    return value not in (None, False)


def _auth_url(server: str) -> str:
    url = urlsplit(server)
    return f"{url.scheme}://{url.netloc}{DEFAULT_AUTH_PATH}"


def _client_secret(args: argparse.Namespace) -> str | None:
    path: Path | None = getattr(args, "client_secret_file", None)
    if path is None:
        return args.client_secret  # type: ignore[no-any-return]
    try:
        with path.open(encoding="utf-8") as f:
            secret = f.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --client-secret-file {path}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    if not secret:
        raise UsageError(f"--client-secret-file {path} is empty: put the client_secret on its "
                         "first line")
    return secret


class DeviceAuth:
    """The checked options: a TokenManager on the file, and what to do first."""

    def __init__(self, args: argparse.Namespace, cafile: str | None) -> None:
        if args.auth_file is None:
            flags = [flag for dest, flag in _AUTH_ONLY.items() if _given(args, dest)]
            raise UsageError(f"{', '.join(flags)} {'needs' if len(flags) == 1 else 'need'} "
                             "--auth-file PATH (where the device's tokens are kept: a code "
                             "works once)")
        if args.token:
            raise UsageError("--token and --auth-file are two ways to authenticate: give one")
        if args.logout and (args.text is not None or args.wav is not None):
            raise UsageError("--logout revokes the tokens and exits: it takes no --text or --wav")
        self.path: Path = args.auth_file
        self.store = TokenFile(self.path)
        saved = self.store.load()  # TokenFileError: a clear message, and the file is kept
        self.obtain = args.code is not None or args.account_token is not None or args.guest
        self.code: str | None = args.code
        self.account_token: str | None = args.account_token
        self.guest: bool = args.guest
        self.logout: bool = args.logout
        if saved is None:
            if self.logout:
                raise UsageError(f"{self.path} does not exist: there are no tokens to revoke")
            if not self.obtain:
                raise UsageError(f"{self.path} does not exist yet: authorise the device first "
                                 "with --code, --account-token or --guest")
            missing = [flag for flag, value in (("--client-id", args.client_id),
                                                ("--device-id", args.device_id)) if not value]
            if missing:
                raise UsageError(f"authorising a device needs {' and '.join(missing)}")
            client_id, device_id = args.client_id, args.device_id
            model_id = args.model_id or DEFAULT_MODEL_ID
        else:
            if self.obtain:
                raise UsageError(f"{self.path} already holds the tokens of device "
                                 f"{saved.device_id!r}: run with --logout first (or remove the "
                                 "file if they are no longer valid), or use another --auth-file")
            for flag, given, kept in (("--client-id", args.client_id, saved.client_id),
                                      ("--device-id", args.device_id, saved.device_id),
                                      ("--model-id", args.model_id, saved.model_id)):
                if given is not None and given != kept:
                    raise UsageError(f"{flag} {given!r} does not match {self.path}, which holds "
                                     f"the tokens of {flag[2:]} {kept!r}")
            client_id, device_id, model_id = saved.client_id, saved.device_id, saved.model_id
        client_secret = _client_secret(args)
        if not client_secret:
            raise UsageError("--auth-file needs --client-secret or --client-secret-file (to "
                             "exchange, refresh and revoke tokens)")
        self.auth_url: str = args.auth_url or _auth_url(args.server)
        self.cafile = cafile
        self.insecure: bool = args.insecure
        try:
            self.manager = TokenManager(
                self.auth_url, client_id, client_secret, device_id, model_id,
                store=self.store, cafile=cafile, insecure=args.insecure)
        except ValueError as exc:  # a malformed --auth-url
            raise UsageError(str(exc)) from None

    async def authorise(self) -> None:
        """Obtain a code if asked to and exchange it; the pair lands in the file."""
        m = self.manager
        code = self.code
        if code is None:
            state = secrets.token_urlsafe(12)
            doc = await request_code(
                self.auth_url, client_id=m.client_id, device_id=m.device_id,
                model_id=m.model_id, state=state, account_token=self.account_token,
                guest=self.guest, cafile=self.cafile, insecure=self.insecure)
            if doc.get("state") != state or not isinstance(doc.get("code"), str):
                # The anti-CSRF check /authorize's state exists for (auth.md §2.1).
                raise AuthAPIError(200, "invalid_response", "/authorize answered without "
                                   "our state or without a code", doc)
            code = doc["code"]
        await m.exchange_code(code)
        kind = "as a guest " if self.guest else ""
        print(f"device {m.device_id!r} authorised {kind}(client_id {m.client_id!r}, model_id "
              f"{m.model_id!r}); tokens saved in {self.path}", file=sys.stderr, flush=True)

    def run_logout(self) -> int:
        async def go() -> dict[str, Any]:
            return await self.manager.revoke()

        try:
            asyncio.run(go())
        except ClientError as exc:
            code = report(exc, self.path)
            if code is None:
                print(f"error: logout failed: {exc}", file=sys.stderr)
                return 1
            return code
        print(f"device {self.manager.device_id!r} logged out: tokens revoked, {self.path} "
              "removed", file=sys.stderr)
        return 0


def report(exc: BaseException, path: Path | None) -> int | None:
    """Print an auth failure the way a user can act on it; its exit status (None: not
    an auth failure)."""
    if isinstance(exc, AuthAPIError):
        print(f"error: {describe(exc, path)}", file=sys.stderr)
        return 1
    if isinstance(exc, AuthServerUnavailable):
        print(f"error: the auth API is unavailable: {exc}", file=sys.stderr)
        return 1
    if isinstance(exc, TokenFileError):
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return None


def describe(exc: AuthAPIError, path: Path | None) -> str:
    said = f"HTTP {exc.status} {exc.error or ''}: {exc.description or 'no description'}"
    if exc.status == 451:  # B-AT-02: the user must agree to the terms first
        where = exc.body.get("redirect_uri", "the terms page")
        return (f"the auth API refused ({said}): the user must agree to the terms first; "
                f"open {where}, then run the command again")
    if exc.status == 423:  # B-AT-03
        return (f"the auth API refused ({said}): this account left Clova; it can be used "
                "again one month after the withdrawal")
    if exc.error == "invalid_grant" and path is not None and path.exists():
        return (f"the auth API refused ({said}); if the tokens in {path} are no longer valid, "
                "remove the file and authorise the device again")
    return f"the auth API refused ({said})"
