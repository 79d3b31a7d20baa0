"""``opencic``: serve, token tools, the device simulator and benchmarks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ConfigError, load_settings


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the CIC server (HTTP/2; TLS unless --h2c)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 8443)")
    p.add_argument("--data-dir", type=Path, help="where the database and TLS material live (default ./data)")
    p.add_argument("--config", type=Path, help="TOML settings file (default <data-dir>/opencic.toml)")
    p.add_argument("--h2c", action="store_true", default=None,
                   help="serve cleartext HTTP/2 with prior knowledge instead of TLS")
    p.add_argument("--server", choices=["granian", "hypercorn"], help="HTTP/2 server (default granian)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from ..server.runner import serve

    settings = load_settings(
        config_file=args.config,
        overrides={
            "host": args.host, "port": args.port, "data_dir": args.data_dir, "h2c": args.h2c,
            "server": args.server, "log_level": args.log_level,
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
    c.add_argument("--expires-in", type=int, help="lifetime in seconds (default: token_ttl_seconds)")
    c.set_defaults(func=_run_token_create)
    r = tsub.add_parser("revoke", help="revoke a bearer token")
    r.add_argument("token")
    r.add_argument("--data-dir", type=Path)
    r.set_defaults(func=_run_token_revoke)


def _run_token_create(args: argparse.Namespace) -> int:
    from ..state.sqlite import Database
    from ..state.tokens import TokenStore, valid_device_id

    settings = load_settings(overrides={"data_dir": args.data_dir})
    if not valid_device_id(args.device_id):
        print("opencic: --device-id must be 1-128 printable characters without surrounding spaces",
              file=sys.stderr)
        return 2
    ttl = args.expires_in if args.expires_in is not None else settings.token_ttl_seconds
    if ttl <= 0:
        print("opencic: --expires-in must be a positive number of seconds", file=sys.stderr)
        return 2
    db = Database.in_data_dir(settings.data_dir)
    try:
        token = TokenStore(db).create(args.device_id, ttl)
    finally:
        db.close()
    print(f"device {args.device_id}: token valid for {ttl} s (data dir {settings.data_dir})",
          file=sys.stderr)
    print(token)
    return 0


def _run_token_revoke(args: argparse.Namespace) -> int:
    from ..state.sqlite import Database
    from ..state.tokens import TokenStore

    settings = load_settings(overrides={"data_dir": args.data_dir})
    db = Database.in_data_dir(settings.data_dir)
    try:
        found = TokenStore(db).revoke(args.token)
    finally:
        db.close()
    if not found:
        print("opencic: no such token", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opencic", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_serve(sub)
    _add_token(sub)
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
