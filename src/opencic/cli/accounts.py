"""``opencic user …`` and ``opencic client …``: the self-hosted accounts that replace the
upstream portal (users with account tokens) and the developer console (products with
a client_id and client_secret). Secrets are printed once and stored hashed only."""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

from ..state.base import Store
from ..state.hashing import new_token

DATABASE_HELP = ("state database: postgresql://… or sqlite:///PATH "
                 "(default: SQLite in the data dir)")

Sub = argparse._SubParsersAction


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, help="data dir of the server (default ./data)")
    p.add_argument("--database", help=DATABASE_HELP)


def add_parsers(sub: Sub[argparse.ArgumentParser]) -> None:
    u = sub.add_parser("user", help="manage user accounts (account tokens for /authorize)")
    usub = u.add_subparsers(dest="user_command", required=True)
    p = usub.add_parser("add", help="add a user; prints their account token as the last line")
    p.add_argument("name")
    p.add_argument("--password", action="store_true",
                   help="also set a password for the login page (asked for on a terminal, "
                        "else read as the first line of stdin)")
    _store_args(p)
    p.set_defaults(func=_user_add)
    p = usub.add_parser("password", help="set or change a user's login-page password "
                        "(asked for on a terminal, else read as the first line of stdin)")
    p.add_argument("name")
    _store_args(p)
    p.set_defaults(func=_user_password)
    p = usub.add_parser("token", help="issue another account token for a user (printed)")
    p.add_argument("name")
    _store_args(p)
    p.set_defaults(func=_user_token)
    p = usub.add_parser("list", help="list users")
    _store_args(p)
    p.set_defaults(func=_user_list)
    p = usub.add_parser("remove", help="remove a user with their devices and tokens")
    p.add_argument("name")
    _store_args(p)
    p.set_defaults(func=_user_remove)

    c = sub.add_parser("client", help="manage products (client_id / client_secret for /token)")
    csub = c.add_subparsers(dest="client_command", required=True)
    p = csub.add_parser("add", help="register a product; prints client_id=… and client_secret=…")
    p.add_argument("name", help="a label for the product")
    p.add_argument("--client-id", help="choose the client_id (default: random)")
    _store_args(p)
    p.set_defaults(func=_client_add)
    p = csub.add_parser("list", help="list products")
    _store_args(p)
    p.set_defaults(func=_client_list)
    p = csub.add_parser("remove", help="remove a product (its tokens stop working)")
    p.add_argument("client_id")
    _store_args(p)
    p.set_defaults(func=_client_remove)


def _with_store(args: argparse.Namespace, fn):  # type: ignore[no-untyped-def]
    from ..state.store import create_store
    from .main import _run_store, _store_settings

    settings = _store_settings(args)

    async def go():  # type: ignore[no-untyped-def]
        async with create_store(settings.database, settings.data_dir) as store:
            return await fn(store)

    return _run_store(go, settings)


def _fail(message: str) -> int:
    print(f"opencic: {message}", file=sys.stderr)
    return 1


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


MAX_PASSWORD_LENGTH = 1024  # what the login page accepts


def _read_password(name: str) -> str | None:
    """From the terminal (twice, not echoed) or the first line of stdin; None after
    printing why when it is unusable."""
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            _fail("the passwords differ")
            return None
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _fail("the password must not be empty")
        return None
    if len(password) > MAX_PASSWORD_LENGTH:
        _fail(f"the password must be at most {MAX_PASSWORD_LENGTH} characters")
        return None
    return password


def _user_add(args: argparse.Namespace) -> int:
    from ..state import AlreadyExists
    from ..state.repositories import valid_identifier

    if not valid_identifier(args.name):
        return _fail("a user name must be 1-128 printable characters without surrounding spaces")
    password = None
    if args.password:
        password = _read_password(args.name)
        if password is None:
            return 1

    async def add(store: Store) -> str | None:
        try:
            # Hashed with salted scrypt in a thread (state/hashing.py).
            user = await store.users.add(args.name, password)
        except AlreadyExists:
            return None
        return await store.account_tokens.issue(user.user_id)

    token = _with_store(args, add)
    if token is None:
        return _fail(f"cannot add user {args.name!r} (it exists already, or see above)")
    print(f"user {args.name}: account token (for 'Authorization: Bearer' on /authorize):",
          file=sys.stderr)
    print(token)
    return 0


def _user_password(args: argparse.Namespace) -> int:
    password = _read_password(args.name)
    if password is None:
        return 1

    async def set_password(store: Store) -> bool:
        user = await store.users.get_by_name(args.name)
        return user is not None and await store.users.set_password(user.user_id, password)

    done = _with_store(args, set_password)
    if done is None:
        return 1
    if not done:
        return _fail(f"no such user {args.name!r}")
    print(f"user {args.name}: password set", file=sys.stderr)
    return 0


def _user_token(args: argparse.Namespace) -> int:
    async def issue(store: Store) -> str | None:
        user = await store.users.get_by_name(args.name)
        return None if user is None else await store.account_tokens.issue(user.user_id)

    token = _with_store(args, issue)
    if token is None:
        return _fail(f"no such user {args.name!r}")
    print(token)
    return 0


def _user_list(args: argparse.Namespace) -> int:
    async def users(store: Store) -> list[tuple[str, str, float, int]]:
        out = []
        for u in await store.users.list():
            out.append((u.name, u.user_id, u.created_at, len(await store.devices.list(u.user_id))))
        return out

    rows = _with_store(args, users)
    if rows is None:
        return 1
    for name, user_id, created, devices in rows:
        print(f"{name}\t{user_id}\t{_when(created)}\t{devices} device(s)")
    return 0


def _user_remove(args: argparse.Namespace) -> int:
    async def remove(store: Store) -> bool:
        user = await store.users.get_by_name(args.name)
        return user is not None and await store.users.remove(user.user_id)

    done = _with_store(args, remove)
    if done is None:
        return 1
    if not done:
        return _fail(f"no such user {args.name!r}")
    return 0


def _client_add(args: argparse.Namespace) -> int:
    from ..state import AlreadyExists
    from ..state.repositories import valid_identifier

    client_id = args.client_id or secrets.token_hex(10)
    if not valid_identifier(client_id) or any(c.isspace() for c in client_id):
        return _fail("--client-id must be 1-128 printable characters without spaces")
    # new_token: never starting with "-", which argparse would take for an option when
    # the secret is given to `opencic device --client-secret`.
    secret = new_token()

    async def add(store: Store) -> bool:
        try:
            await store.clients.add(client_id, secret, name=args.name)
        except AlreadyExists:
            return False
        return True

    done = _with_store(args, add)
    if done is None:
        return 1
    if not done:
        return _fail(f"client_id {client_id!r} exists already")
    print(f"product {args.name}: keep the secret, it is not shown again", file=sys.stderr)
    print(f"client_id={client_id}")
    print(f"client_secret={secret}")
    return 0


def _client_list(args: argparse.Namespace) -> int:
    async def clients(store: Store) -> list[tuple[str, str, float]]:
        return [(c.client_id, c.name, c.created_at) for c in await store.clients.list()]

    rows = _with_store(args, clients)
    if rows is None:
        return 1
    for client_id, name, created in rows:
        print(f"{client_id}\t{name}\t{_when(created)}")
    return 0


def _client_remove(args: argparse.Namespace) -> int:
    async def remove(store: Store) -> bool:
        return await store.clients.remove(args.client_id)

    done = _with_store(args, remove)
    if done is None:
        return 1
    if not done:
        return _fail(f"no such client_id {args.client_id!r}")
    return 0
