"""The operator's push API: send directives down devices' downchannels.

``POST /admin/v1/push`` with ``Authorization: Bearer <admin token>`` (the token is in
``<data-dir>/admin.token``, made on first run) and a JSON body::

    {"devices": ["kitchen", ...] | "all",
     "directives": [{"namespace": "Notifier", "name": "SetIndicator", "payload": {...}}]}

Only directives the contract lets the cloud send unprompted (channel downchannel or
either, B-DC-09) are accepted; each must pass the strict schema; they carry no
dialogRequestId (B-DC-08). Answers are JSON, not CIC multipart: this is our API, not
the contract's.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from ..protocol.errors import BadRequest, OutboundSchemaError, Unauthorized
from ..protocol.messages import Directive
from ..protocol.schema import message_spec, validate_directive_strict
from .downchannels import DownchannelRegistry

ADMIN_TOKEN_FILE = "admin.token"
MAX_ADMIN_BODY = 1024 * 1024
MAX_DIRECTIVES = 32
# Server-owned or dialogue-bound directives an operator must not fake.
NOT_PUSHABLE = {"Clova.Hello", "SpeechRecognizer.StopCapture", "SpeechRecognizer.ShowRecognizedText"}


def ensure_admin_token(data_dir: Path) -> Path:
    path = data_dir / ADMIN_TOKEN_FILE
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
    return path


def read_admin_token(data_dir: Path) -> str | None:
    path = data_dir / ADMIN_TOKEN_FILE
    return path.read_text().strip() if path.is_file() else None


def check_admin(authorization: str | None, expected: str | None) -> None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if expected is None or scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), expected):
        raise Unauthorized("admin API needs 'Authorization: Bearer <admin token>' (see <data-dir>/admin.token)")


def parse_push_request(body: bytes) -> tuple[list[str] | None, list[Directive]]:
    """(device ids or None for all, directives); BadRequest says what is wrong."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest("body must be a JSON object with 'devices' and 'directives'")
    devices = doc.get("devices")
    if devices == "all":
        targets: list[str] | None = None
    elif isinstance(devices, list) and devices and all(isinstance(d, str) and d for d in devices):
        targets = list(dict.fromkeys(devices))
    else:
        raise BadRequest("'devices' must be \"all\" or a non-empty list of device ids")
    raw = doc.get("directives")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'directives' must be a non-empty list")
    if len(raw) > MAX_DIRECTIVES:
        raise BadRequest(f"at most {MAX_DIRECTIVES} directives per push")
    directives = [_directive(i, item) for i, item in enumerate(raw)]
    return targets, directives


def _directive(index: int, item: Any) -> Directive:
    where = f"directives[{index}]"
    if not isinstance(item, dict):
        raise BadRequest(f"{where} must be an object with namespace, name and payload")
    namespace, name, payload = item.get("namespace"), item.get("name"), item.get("payload", {})
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise BadRequest(f"{where}: namespace and name must be strings")
    qualified = f"{namespace}.{name}"
    spec = message_spec(namespace, name)
    if spec is None or not spec.is_directive or spec.internal_only:
        raise BadRequest(f"{where}: {qualified} is not a CIC directive")
    if qualified in NOT_PUSHABLE or spec.channel not in ("downchannel", "either"):
        raise BadRequest(f"{where}: {qualified} cannot be pushed on a downchannel (B-DC-09)")
    if not isinstance(payload, dict):
        raise BadRequest(f"{where}: payload must be an object")
    directive = Directive.create(namespace, name, payload)
    try:
        validate_directive_strict(directive)
    except OutboundSchemaError as exc:
        raise BadRequest(f"{where}: {exc}") from None
    return directive


def push(registry: DownchannelRegistry, targets: list[str] | None, directives: list[Directive]) -> dict[str, Any]:
    if targets is None:
        return {"delivered": registry.broadcast(directives), "offline": []}
    offline = [d for d in targets if not registry.push(d, directives)]
    return {"delivered": len(targets) - len(offline), "offline": offline}
