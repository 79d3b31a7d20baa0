"""User-Agent strings of CIC clients (B-UA-02, B-UA-03; ambiguity #35)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

_NAME = r"[A-Za-z0-9_.\-]+(?: +[A-Za-z0-9_.\-]+)*"
_IDENT = r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*"
_SEMVER = rf"\d+\.\d+\.\d+(?:-{_IDENT})?(?:\+{_IDENT})?"
USER_AGENT_RE = re.compile(
    rf"^({_NAME}) ?/ ?({_NAME}) ?/ ?({_SEMVER}) ?\(({_NAME}) ?; ?({_NAME})"
    rf"((?: ?; ?[A-Za-z0-9_.\-]+=[A-Za-z0-9_.\-%]+)*)\)$"
)


@dataclass(frozen=True, slots=True)
class UserAgent:
    manufacturer: str
    product: str
    firmware_version: str
    os: str
    hardware: str
    properties: dict[str, str] = field(default_factory=dict)


def parse_user_agent(value: str | None) -> UserAgent | None:
    """The parsed string, or None when it does not follow B-UA-02 (the server only logs that)."""
    if not value:
        return None
    match = USER_AGENT_RE.match(value.strip())
    if match is None:
        return None
    props: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in match.group(6).split(";"))):
        key, _, val = item.partition("=")
        props[key] = unquote(val)
    manufacturer, product, version, os_name, hardware = (match.group(i).strip() for i in range(1, 6))
    return UserAgent(manufacturer, product, version, os_name, hardware, props)
