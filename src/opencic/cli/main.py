"""``opencic``: serve, token tools, accounts, the device simulator and benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from ..config import ConfigError, Settings, load_settings

T = TypeVar("T")

DATABASE_HELP = ("state database: postgresql://… or sqlite:///PATH "
                 "(default: SQLite in the data dir)")


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the CIC server (HTTP/2; TLS unless --h2c)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 8443)")
    p.add_argument("--data-dir", type=Path, help="where the database and TLS material live (default ./data)")
    p.add_argument("--config", type=Path, help="TOML settings file (default <data-dir>/opencic.toml)")
    p.add_argument("--h2c", action="store_true", default=None,
                   help="serve cleartext HTTP/2 with prior knowledge instead of TLS")
    p.add_argument("--server", choices=["granian", "hypercorn"], help="HTTP/2 server (default granian)")
    p.add_argument("--database", help=DATABASE_HELP)
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from ..server.runner import serve

    settings = load_settings(
        config_file=args.config,
        overrides={
            "host": args.host, "port": args.port, "data_dir": args.data_dir, "h2c": args.h2c,
            "server": args.server, "log_level": args.log_level, "database": args.database,
        },
    )
    serve(settings)
    return 0


def _add_token(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("token", help="manage device bearer tokens")
    tsub = p.add_subparsers(dest="token_command", required=True)
    c = tsub.add_parser("create", help="create a bearer token for a device (printed as the last line)")
    c.add_argument("--device-id", required=True, help="the device the token authenticates")
    c.add_argument("--data-dir", type=Path, help="data dir of the server (default ./data)")
    c.add_argument("--database", help=DATABASE_HELP)
    c.add_argument("--expires-in", type=int, help="lifetime in seconds (default: token_ttl_seconds)")
    c.set_defaults(func=_run_token_create)
    r = tsub.add_parser("revoke", help="revoke a bearer token")
    r.add_argument("token", help="the token, or - to read it from standard input (keeps it "
                                 "out of ps and the shell history)")
    r.add_argument("--data-dir", type=Path)
    r.add_argument("--database", help=DATABASE_HELP)
    r.set_defaults(func=_run_token_revoke)


def _store_settings(args: argparse.Namespace) -> Settings:
    return load_settings(overrides={"data_dir": args.data_dir, "database": args.database})


def _run_token_create(args: argparse.Namespace) -> int:
    from ..state.store import create_store, describe
    from ..state.tokens import valid_device_id

    settings = _store_settings(args)
    if not valid_device_id(args.device_id):
        print("opencic: --device-id must be 1-128 printable characters without surrounding spaces",
              file=sys.stderr)
        return 2
    ttl = args.expires_in if args.expires_in is not None else settings.token_ttl_seconds
    if ttl <= 0:
        print("opencic: --expires-in must be a positive number of seconds", file=sys.stderr)
        return 2

    async def create() -> str:
        async with create_store(settings.database, settings.data_dir) as store:
            # A development token: the device is created unowned if it is new.
            await store.devices.ensure([args.device_id])
            return (await store.tokens.issue(args.device_id, ttl=ttl)).access_token

    token = _run_store(create, settings)
    if token is None:
        return 1
    where = describe(settings.database, settings.data_dir)
    print(f"device {args.device_id}: token valid for {ttl} s (database {where})", file=sys.stderr)
    print(token)
    return 0


def _run_token_revoke(args: argparse.Namespace) -> int:
    from ..state.store import create_store

    settings = _store_settings(args)
    token = sys.stdin.readline().strip() if args.token == "-" else args.token
    if not token:
        print("opencic: no token on standard input", file=sys.stderr)
        return 2

    async def revoke() -> bool:
        async with create_store(settings.database, settings.data_dir) as store:
            return await store.tokens.revoke(token)

    found = _run_store(revoke, settings)
    if found is None:
        return 1
    if not found:
        print("opencic: no such token", file=sys.stderr)
        return 1
    return 0


def _run_store(fn: Callable[[], Coroutine[Any, Any, T]], settings: Settings) -> T | None:
    """Runs one store operation; a database we cannot use is a message, not a trace."""
    import sqlite3

    from ..state import StateError
    from ..state.store import describe

    try:
        return asyncio.run(fn())
    except (StateError, ConnectionError, OSError, sqlite3.Error) as exc:
        where = describe(settings.database, settings.data_dir)
        print(f"opencic: cannot use the database {where}: {exc}", file=sys.stderr)
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opencic", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve(sub)
    _add_token(sub)
    from . import accounts

    accounts.add_parsers(sub)
    try:
        from . import device
    except ImportError:  # the simulator's optional pieces are missing
        pass
    else:
        device.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"opencic: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
