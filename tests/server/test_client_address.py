"""ClientAddress: X-Forwarded-For is believed only from trusted proxies, right to left."""

from __future__ import annotations

from typing import Any

import pytest

from opencic.config import ConfigError, load_settings
from opencic.server.client_address import ClientAddress, parse_trusted_proxies


def scope(peer: str, *forwarded: str) -> dict[str, Any]:
    return {"client": (peer, 50000),
            "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded]}


PROXIES = ClientAddress(parse_trusted_proxies("10.0.0.1, 192.168.0.0/16, ::1"))


@pytest.mark.parametrize(("request_scope", "client"), [
    (scope("10.0.0.1", "203.0.113.5"), "203.0.113.5"),  # one trusted proxy
    # The client's own X-Forwarded-For claim (left) is never believed.
    (scope("10.0.0.1", "6.6.6.6, 203.0.113.5"), "203.0.113.5"),
    # A chain of trusted proxies is walked past; several headers count as one list.
    (scope("10.0.0.1", "6.6.6.6, 203.0.113.5", "192.168.4.4"), "203.0.113.5"),
    (scope("::1", "2001:db8::7"), "2001:db8::7"),
    (scope("10.0.0.1", "203.0.113.5:4711"), "203.0.113.5"),
    (scope("10.0.0.1", "[2001:db8::7]:443"), "2001:db8::7"),
    # Not a proxy of ours: its headers are ignored.
    (scope("198.51.100.9", "203.0.113.5"), "198.51.100.9"),
    # A trusted proxy without the header, or with junk where its own entry should be.
    (scope("10.0.0.1"), "10.0.0.1"),
    (scope("10.0.0.1", "not-an-address"), "10.0.0.1"),
    (scope("10.0.0.1", "junk, 192.168.1.1"), "192.168.1.1"),
])
def test_the_client_behind_trusted_proxies(request_scope: dict[str, Any], client: str) -> None:
    assert PROXIES.of(request_scope) == client


def test_without_trusted_proxies_the_peer_counts() -> None:
    assert ClientAddress().of(scope("10.0.0.1", "203.0.113.5")) == "10.0.0.1"
    assert ClientAddress().of({"headers": []}) == "?"


def test_a_bad_trusted_proxies_setting_names_the_entry(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match=r"'trusted_proxies': 'proxy\.lan' is not an IP"):
        load_settings(env={"OPENCIC_TRUSTED_PROXIES": "10.0.0.1, proxy.lan",
                           "OPENCIC_DATA_DIR": str(tmp_path)})
    ok = load_settings(env={"OPENCIC_TRUSTED_PROXIES": "10.0.0.0/8,::1",
                            "OPENCIC_DATA_DIR": str(tmp_path)})
    assert len(parse_trusted_proxies(ok.trusted_proxies)) == 2
