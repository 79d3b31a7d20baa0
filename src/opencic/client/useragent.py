"""The User-Agent string every request carries (B-CN-03, B-UA-01..03).

Format (B-UA-02): ``Manufacturer/Product/FirmwareVersion (OS; Hardware[; key=value]...)``,
e.g. ``OpenCIC/DeviceSimulator/0.1.0 (Linux;Simulator)``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from opencic import __version__ as _package_version
from opencic.protocol.user_agent import parse_user_agent

_NAME_BAD = re.compile(r"[^A-Za-z0-9_.\- ]+")


def _name(value: str, what: str) -> str:
    # Names allow letters, digits, _ - . and single inner spaces (B-UA-02); replace
    # anything else rather than send a string the server may refuse (B-UA-05).
    cleaned = " ".join(_NAME_BAD.sub("-", value).split())
    if not cleaned:
        raise ValueError(f"User-Agent {what} must not be empty")
    return cleaned


def build_user_agent(
    manufacturer: str = "OpenCIC",
    product: str = "DeviceSimulator",
    firmware_version: str | None = None,
    os: str = "Linux",
    hardware: str = "Simulator",
    **properties: str,
) -> str:
    """Compose a B-UA-02 User-Agent; ``properties`` become URL-encoded ``; key=value`` items.

    The result is checked with the server's own parser
    (:func:`opencic.protocol.user_agent.parse_user_agent`), so client and server share
    one definition of the format; ``ValueError`` when it does not conform (e.g. a
    firmware version that is not SemVer, B-UA-03, or an empty property value).
    """
    version = firmware_version or _semver(_package_version)
    extra = "".join(
        f";{_name(key, 'property name').replace(' ', '_')}={_encode(str(value))}"
        for key, value in properties.items()
    )
    user_agent = (
        f"{_name(manufacturer, 'manufacturer')}/{_name(product, 'product')}/{version} "
        f"({_name(os, 'OS')};{_name(hardware, 'hardware')}{extra})"
    )
    parsed = parse_user_agent(user_agent)
    if parsed is None or parsed.firmware_version != version:
        raise ValueError(
            f"User-Agent {user_agent!r} does not follow B-UA-02 (the firmware version must be "
            f"MAJOR.MINOR.PATCH, B-UA-03; property values must not be empty)"
        )
    return user_agent


def _encode(value: str) -> str:
    # quote() leaves "~" alone, but the B-UA-02 value charset has no "~".
    return quote(value, safe="").replace("~", "%7E")


def _semver(version: str) -> str:
    # Package versions may be PEP 440 ("0.1.0.dev3"); keep the SemVer core.
    match = re.match(r"\d+\.\d+\.\d+", version)
    return match.group(0) if match else "0.0.0"


DEFAULT_USER_AGENT = build_user_agent()
