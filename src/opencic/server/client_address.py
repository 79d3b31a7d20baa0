"""Who the client is when the server sits behind a reverse proxy (sans-I/O).

A TLS-terminating proxy connects from its own address, so every client would share
one per-address rate limit. With ``trusted_proxies`` set, a request whose peer is one
of those proxies is attributed to the address in ``X-Forwarded-For``: walking from
the right, past entries that are themselves trusted proxies, the first other one is
the address the outermost trusted proxy saw. Anything left of it was written by the
client and is never believed. A request from any other peer keeps its peer address,
whatever headers it sends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(value: str) -> tuple[Network, ...]:
    """``"10.0.0.1, 192.168.0.0/16, ::1"`` -> networks; ValueError naming a bad entry."""
    networks: list[Network] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network (CIDR)") from None
    return tuple(networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[::1]:443" as some proxies write it
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "1.2.3.4:5678"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class ClientAddress:
    def __init__(self, trusted: Iterable[Network] = ()) -> None:
        self.trusted = tuple(trusted)

    def _is_trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self.trusted)

    def of(self, scope: dict[str, Any]) -> str:
        """The client's address for per-address limits (the peer's, unless a trusted
        proxy says otherwise)."""
        peer = str((scope.get("client") or ("?",))[0])
        if not self.trusted:
            return peer
        peer_ip = _ip(peer)
        if peer_ip is None or not self._is_trusted(peer_ip):
            return peer
        hops = [hop for key, value in scope.get("headers", ())
                if key == b"x-forwarded-for"
                for hop in value.decode("latin-1").split(",")]
        client = peer
        for hop in reversed(hops):
            hop_ip = _ip(hop)
            if hop_ip is None:
                break  # not an address a proxy of ours wrote: stop believing here
            client = str(hop_ip)
            if not self._is_trusted(hop_ip):
                break
        return client
