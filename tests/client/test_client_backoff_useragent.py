"""Reconnect backoff (B-DC-07, B-KA-01) and the User-Agent string (B-UA-02/03)."""

from __future__ import annotations

import random

import pytest

from opencic.client.backoff import Backoff
from opencic.client.useragent import DEFAULT_USER_AGENT, build_user_agent

# The server's B-UA-02 definition: the strings the client builds must pass it.
from opencic.protocol.user_agent import USER_AGENT_RE as UA_RE
from opencic.protocol.user_agent import parse_user_agent


def test_backoff_first_delay_is_quarter_second() -> None:
    assert Backoff().delay(0) == pytest.approx(0.25)


def test_backoff_bounds_over_many_attempts() -> None:
    backoff = Backoff(rng=random.Random(1))
    for attempt in range(200):
        for _ in range(20):
            assert 0.25 <= backoff.delay(attempt) <= 20.0


def test_backoff_grows_exponentially_then_caps() -> None:
    backoff = Backoff()
    assert [backoff.step(n) for n in range(9)] == [0.25, 0.5, 1, 2, 4, 8, 16, 20, 20]
    assert backoff.step(10_000) == 20.0  # no overflow


def test_backoff_is_jittered_within_upper_half_of_each_step() -> None:
    backoff = Backoff(rng=random.Random(7))
    for attempt in range(3, 12):
        step = backoff.step(attempt)
        samples = {round(backoff.delay(attempt), 6) for _ in range(50)}
        assert len(samples) > 10  # really random: devices do not reconnect in lock-step
        assert all(step / 2 <= s <= step for s in samples)


def test_backoff_schedule_iterator() -> None:
    it = Backoff(rng=random.Random(3)).delays()
    delays = [next(it) for _ in range(12)]
    assert delays[0] == pytest.approx(0.25)
    assert max(delays) <= 20.0
    assert delays[-1] >= 10.0  # capped step 20 s, jitter keeps it in [10, 20]


def test_default_user_agent_matches_b_ua_02() -> None:
    assert DEFAULT_USER_AGENT == "OpenCIC/DeviceSimulator/0.1.0 (Linux;Simulator)"
    assert UA_RE.match(DEFAULT_USER_AGENT)


def test_user_agent_with_properties_and_odd_characters() -> None:
    ua = build_user_agent(
        "ACME Corp", "Smart/Speaker", "1.2.3-beta.1+build_7", "Linux 6", "rpi4",
        locale="ko KR", note="a~b;c=d",
    )
    assert UA_RE.match(ua), ua
    m = UA_RE.match(ua)
    assert m is not None
    assert m.group(1) == "ACME Corp"
    assert m.group(3) == "1.2.3-beta.1+build_7"
    assert "locale=ko%20KR" in ua and "note=a%7Eb%3Bc%3Dd" in ua


def test_user_agent_parses_back_to_what_was_given() -> None:
    parsed = parse_user_agent(build_user_agent("ACME", "Speaker", "2.0.1", "Linux", "rpi4",
                                               locale="ko KR"))
    assert parsed is not None
    assert (parsed.manufacturer, parsed.product, parsed.firmware_version) == ("ACME", "Speaker",
                                                                              "2.0.1")
    assert (parsed.os, parsed.hardware, parsed.properties) == ("Linux", "rpi4",
                                                               {"locale": "ko KR"})


@pytest.mark.parametrize("version", ["1.2", "1.2.3.4", "v1.2.3", " 1.2.3", "1.2.3-", "1.2.3+a..b"])
def test_user_agent_rejects_non_semver_firmware(version: str) -> None:
    """B-UA-03."""
    with pytest.raises(ValueError, match="B-UA-03"):
        build_user_agent(firmware_version=version)


def test_user_agent_rejects_empty_property_value() -> None:
    # B-UA-02 has no empty ``key=`` item: refuse rather than send a string the server logs.
    with pytest.raises(ValueError):
        build_user_agent(note="")
