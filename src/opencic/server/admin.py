"""The operator's push API: send directives down devices' downchannels.

``POST /admin/v1/push`` with ``Authorization: Bearer <admin token>`` (the token is in
``<data-dir>/admin.token``, made on first run) and a JSON body::

    {"devices": ["kitchen", ...] | "all", "users": ["alice", ...],
     "directives": [{"namespace": "Notifier", "name": "SetIndicator", "payload": {...}}],
     "queueSeconds": 3600}

``users`` adds every device of those users (per-user targeting: nothing reaches another
user's devices). With ``queueSeconds`` the directives are kept for named devices that
are offline and sent on their next downchannel, after Clova.Hello (``delivery/``).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..protocol.errors import BadRequest, OutboundSchemaError, Unauthorized
from ..protocol.messages import Directive
from ..protocol.schema import message_spec, validate_directive_strict

ADMIN_TOKEN_FILE = "admin.token"
MAX_ADMIN_BODY = 1024 * 1024
MAX_DIRECTIVES = 32
# Server-owned or dialogue-bound directives an operator must not fake.
NOT_PUSHABLE = {
    "Clova.Hello", "SpeechRecognizer.StopCapture", "SpeechRecognizer.ShowRecognizedText",
    "SpeechRecognizer.KeepRecording",
}


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
    # Constant-time, on bytes: compare_digest refuses str with non-ASCII characters
    # (TypeError, a 500), and any byte can arrive in a header.
    if expected is None or scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), expected.encode()):
        raise Unauthorized("admin API needs 'Authorization: Bearer <admin token>' (see <data-dir>/admin.token)")


@dataclass(frozen=True, slots=True)
class PushRequest:
    devices: list[str] | None  # None: every live downchannel ("all")
    users: list[str]  # user names: all their devices
    directives: list[Directive]
    queue_seconds: float  # > 0: keep for offline devices this long (store-and-forward)


def parse_push_request(body: bytes, *, max_queue_seconds: float = 7 * 24 * 3600) -> PushRequest:
    """The push request in ``body``; BadRequest says what is wrong."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest("body must be a JSON object with 'devices' and/or 'users', and 'directives'")
    devices, users = doc.get("devices"), doc.get("users", [])
    if devices == "all":
        targets: list[str] | None = None
    elif devices is None and users:
        targets = []
    elif isinstance(devices, list) and devices and all(isinstance(d, str) and d for d in devices):
        targets = list(dict.fromkeys(devices))
    else:
        raise BadRequest("'devices' must be \"all\" or a non-empty list of device ids")
    if not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
        raise BadRequest("'users' must be a list of user names")
    if targets is None and users:
        raise BadRequest("'users' cannot be combined with \"devices\": \"all\"")
    queue = doc.get("queueSeconds", 0)
    if isinstance(queue, bool) or not isinstance(queue, (int, float)) or not 0 <= queue <= max_queue_seconds:
        raise BadRequest(f"'queueSeconds' must be a number from 0 to {max_queue_seconds:g}")
    if queue and targets is None:
        raise BadRequest("'queueSeconds' needs named devices or users, not \"all\"")
    raw = doc.get("directives")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'directives' must be a non-empty list")
    if len(raw) > MAX_DIRECTIVES:
        raise BadRequest(f"at most {MAX_DIRECTIVES} directives per push")
    directives = [_directive(i, item) for i, item in enumerate(raw)]
    return PushRequest(targets, list(dict.fromkeys(users)), directives, float(queue))


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
