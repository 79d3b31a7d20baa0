from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.backend import database_for

from opencic.config import ConfigError, load_settings
from opencic.protocol.user_agent import parse_user_agent
from opencic.state.store import create_store


def test_settings_precedence_toml_env_cli(tmp_path: Path) -> None:
    (tmp_path / "opencic.toml").write_text('port = 9000\nhost = "0.0.0.0"\nh2c = true\n')
    s = load_settings(env={"OPENCIC_PORT": "9100"}, overrides={"data_dir": tmp_path})
    assert (s.port, s.host, s.h2c) == (9100, "0.0.0.0", True)
    s = load_settings(env={"OPENCIC_PORT": "9100"}, overrides={"data_dir": tmp_path, "port": 9200})
    assert s.port == 9200
    assert load_settings(env=s.to_env()) == s  # settings survive the trip to workers


@pytest.mark.parametrize(
    "env, message",
    [
        ({"OPENCIC_PORT": "eighty"}, "'port'"),
        ({"OPENCIC_PORT": "70000"}, "not a TCP port"),
        ({"OPENCIC_COLOUR": "red"}, "unknown setting 'colour'"),
        ({"OPENCIC_H2C": "maybe"}, "'h2c'"),
        ({"OPENCIC_CONNECTION_CHECK": "loose"}, "connection_check"),
        ({"OPENCIC_ASR_MODELS": "ko"}, "'asr_models'.*LANG=PATH"),
        ({"OPENCIC_ASR_MODELS": "ja=/models/x"}, "'asr_models'.*unknown lang 'ja'"),
        ({"OPENCIC_TTS_VOICES": "en=/voices/x.onnx"}, "'tts_voices'.*unknown lang 'en'"),
        ({"OPENCIC_MAX_HEADER_BYTES": "1000"}, "'max_header_bytes'"),
        # The event body must hold the largest JSON part plus the longest audio.
        ({"OPENCIC_MAX_AUDIO_SECONDS": "200"}, "'max_event_bytes'.*at least"),
        ({"OPENCIC_MAX_EVENT_BYTES": "100000"}, "'max_event_bytes'"),
    ],
)
def test_bad_settings_are_reported_by_name(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env={**env, "OPENCIC_DATA_DIR": str(tmp_path)})


def test_invalid_toml_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "opencic.toml").write_text("port = = 1")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(env={}, overrides={"data_dir": tmp_path})


def test_tokens_survive_a_restart_of_the_store(tmp_path: Path) -> None:
    """The full token contract runs on both back ends in tests/state; here: a token made
    by one process start is valid after the next, and migrations are not re-run."""
    database = database_for(tmp_path)  # the suite's back end (support/backend.py)

    async def go() -> None:
        async with create_store(database, tmp_path) as store:
            await store.devices.ensure(["dev-1"])
            token = (await store.tokens.issue("dev-1", ttl=100, now=1000.0)).access_token
            version = await store.schema_version()
        async with create_store(database, tmp_path) as store:
            grant = await store.tokens.lookup(token, now=1050.0)
            assert grant is not None and grant.device_id == "dev-1"
            assert await store.schema_version() == version
    asyncio.run(go())


def test_user_agent_parsing_b_ua_02() -> None:
    ua = parse_user_agent("MyOrganizationName/MyAppName/2.1.2-release (Android 7.0;SettopBox;target=KR;other=sample)")
    assert ua is not None
    assert (ua.manufacturer, ua.product, ua.firmware_version) == ("MyOrganizationName", "MyAppName", "2.1.2-release")
    assert ua.properties == {"target": "KR", "other": "sample"}
    assert parse_user_agent("curl/7.88.1") is None
    assert parse_user_agent(None) is None
