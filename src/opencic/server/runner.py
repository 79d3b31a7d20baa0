"""Start the ASGI app on granian (default) or Hypercorn with CIC-safe settings."""

from __future__ import annotations

import asyncio
import os
import resource
import sqlite3
import sys

from ..config import Settings
from .admin import ensure_admin_token
from .tls import ensure_self_signed

APP_FACTORY = "opencic.server.asgi:create_app"
STOP_TIMEOUT_SECONDS = 10


def raise_open_file_limit() -> int:
    """Every device holds a connection (a descriptor): lift the soft limit to the hard
    one, as long-lived-connection servers do. Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # keep the old limit; the server still runs, with fewer devices
    return soft


def prepare(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    raise_open_file_limit()
    if not settings.h2c and ensure_self_signed(settings.cert_path, settings.key_path):
        print(f"opencic: generated a self-signed certificate at {settings.cert_path}", file=sys.stderr)
    ensure_admin_token(settings.data_dir)
    migrate(settings)
    # Workers are separate processes: the settings travel as OPENCIC_* variables.
    os.environ.update(settings.to_env())


def migrate(settings: Settings) -> None:
    """Applies the schema migrations once, before any worker starts, so a database
    that is unreachable or newer than this code stops `serve` with a clear message
    instead of failing every worker's start-up (workers only re-check the version)."""
    from ..state import StateError
    from ..state.store import create_store, describe

    async def go() -> None:
        store = create_store(settings.database, settings.data_dir)
        await store.open()
        await store.close()

    try:
        asyncio.run(go())
    except (StateError, ConnectionError, OSError, sqlite3.Error) as exc:
        where = describe(settings.database, settings.data_dir)
        raise SystemExit(f"opencic: cannot use the database {where}: {exc}") from None


def serve(settings: Settings) -> None:
    prepare(settings)
    if settings.server == "hypercorn":
        _serve_hypercorn(settings)
    else:
        _serve_granian(settings)


def _serve_granian(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, SSLProtocols
    from granian.http import HTTP2Settings

    tls: dict[str, object] = {}
    if not settings.h2c:
        # granian defaults to TLS 1.3 minimum; CIC devices in the field may only speak 1.2.
        tls = {
            "ssl_cert": settings.cert_path,
            "ssl_key": settings.key_path,
            "ssl_protocol_min": SSLProtocols.tls12,
        }
    Granian(
        APP_FACTORY,
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http2,
        websockets=False,
        workers=settings.workers,
        # Idle downchannels count as requests in flight (design.md pitfalls).
        backpressure=settings.backpressure,
        http2_settings=HTTP2Settings(
            max_concurrent_streams=settings.max_concurrent_streams,
            max_headers_size=settings.max_header_bytes,
            # Detect dead devices so their downchannel slot is freed.
            keep_alive_interval=120_000,
            keep_alive_timeout=20,
        ),
        # Safety net if a stop still finds streams open after downchannels were ended.
        workers_kill_timeout=STOP_TIMEOUT_SECONDS,
        log_level=settings.log_level,  # type: ignore[arg-type]
        **tls,  # type: ignore[arg-type]
    ).serve()


def _serve_hypercorn(settings: Settings) -> None:
    try:
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config
    except ImportError:
        raise SystemExit("opencic: Hypercorn is not installed: pip install 'opencic[hypercorn]'") from None
    from .asgi import create_app

    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    # Hypercorn's default closes a connection after 1000 requests; a device's lives for days.
    config.keep_alive_max_requests = 2**62
    config.keep_alive_timeout = 24 * 3600
    config.h2_max_concurrent_streams = settings.max_concurrent_streams
    config.h2_max_header_list_size = settings.max_header_bytes
    config.alpn_protocols = ["h2"]
    if not settings.h2c:
        config.certfile = str(settings.cert_path)
        config.keyfile = str(settings.key_path)
    asyncio.run(hypercorn_serve(create_app(), config))  # type: ignore[arg-type]
