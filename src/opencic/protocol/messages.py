"""The CIC message envelope: headers, events, directives and context objects.

Wire shapes (seed CIC_API.md, B-EV-05, B-ST-01)::

    event JSON part:  {"context": [ {header:{namespace,name}, payload}... ],
                       "event": {"header": {namespace, name, messageId[, dialogRequestId]},
                                 "payload": {...}}}
    directive part:   {"directive": {"header": {...}, "payload": {...}}}

Parsing is lenient where the contract lets us be (unknown keys are kept, payload
violations are recorded on the message, not raised) and strict where a message
cannot be understood at all (no ``event`` wrapper, no name or messageId): those raise
:class:`BadRequest` with a description that says what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import BadRequest
from .ids import new_id

# Ambiguity #12 in the spec README: examples name the playback context PlayerState.
CONTEXT_ALIASES = {("AudioPlayer", "PlayerState"): ("AudioPlayer", "PlaybackState")}

MAX_ID_LENGTH = 256


@dataclass(slots=True)
class Header:
    namespace: str
    name: str
    message_id: str
    dialog_request_id: str | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "namespace": self.namespace,
            "name": self.name,
            "messageId": self.message_id,
        }
        if self.dialog_request_id is not None:
            out["dialogRequestId"] = self.dialog_request_id
        return out


@dataclass(slots=True)
class ContextObject:
    namespace: str
    name: str
    payload: dict[str, Any]

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"header": {"namespace": self.namespace, "name": self.name}, "payload": self.payload}


@dataclass(slots=True)
class Violation:
    """One way an inbound message departs from its schema (kept, not raised)."""

    where: str  # e.g. "payload.text" or "context[2]"
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@dataclass(slots=True)
class Event:
    header: Header
    payload: dict[str, Any]
    context: list[ContextObject] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    @property
    def qualified_name(self) -> str:
        return self.header.qualified_name

    def context_payload(self, namespace: str, name: str) -> dict[str, Any] | None:
        for obj in self.context:
            if obj.namespace == namespace and obj.name == name:
                return obj.payload
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "context": [c.to_json() for c in self.context],
            "event": {"header": self.header.to_json(), "payload": self.payload},
        }

    @classmethod
    def create(
        cls,
        namespace: str,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        dialog_request_id: str | None = None,
        context: list[ContextObject] | None = None,
    ) -> Event:
        return cls(
            Header(namespace, name, new_id(), dialog_request_id),
            payload if payload is not None else {},
            list(context or []),
        )


@dataclass(slots=True)
class Directive:
    header: Header
    payload: dict[str, Any]

    @property
    def qualified_name(self) -> str:
        return self.header.qualified_name

    @property
    def dialog_request_id(self) -> str | None:
        return self.header.dialog_request_id

    def to_json(self) -> dict[str, Any]:
        return {"directive": {"header": self.header.to_json(), "payload": self.payload}}

    @classmethod
    def create(
        cls,
        namespace: str,
        name: str,
        payload: dict[str, Any] | None = None,
        *,
        dialog_request_id: str | None = None,
    ) -> Directive:
        return cls(
            Header(namespace, name, new_id(), dialog_request_id),
            payload if payload is not None else {},
        )


@dataclass(slots=True)
class Attachment:
    """A binary part referenced from a directive as ``cid:<content_id>`` (B-MP-07)."""

    content_id: str
    data: bytes
    content_type: str = "application/octet-stream"

    @property
    def cid_url(self) -> str:
        return f"cid:{self.content_id}"


# --------------------------------------------------------------------------- parsing


def _require_str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        raise BadRequest(f"{where}.{key} is required")
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{where}.{key} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise BadRequest(f"{where}.{key} is longer than {MAX_ID_LENGTH} characters")
    return value


def _parse_header(obj: Any, where: str) -> Header:
    if not isinstance(obj, dict):
        raise BadRequest(f"{where} must be a JSON object")
    namespace = _require_str(obj, "namespace", where)
    name = _require_str(obj, "name", where)
    message_id = _require_str(obj, "messageId", where)
    dialog = obj.get("dialogRequestId")
    if dialog is not None and (not isinstance(dialog, str) or len(dialog) > MAX_ID_LENGTH):
        raise BadRequest(f"{where}.dialogRequestId must be a string")
    return Header(namespace, name, message_id, dialog or None)


def _parse_context(raw: Any, violations: list[Violation]) -> list[ContextObject]:
    if raw is None:
        # B-EV-05 makes context[] mandatory, but real clients omit it (ambiguity #24).
        violations.append(Violation("context", "missing; treated as []"))
        return []
    if not isinstance(raw, list):
        raise BadRequest("context must be a JSON array")
    out: list[ContextObject] = []
    for i, item in enumerate(raw):
        header = item.get("header") if isinstance(item, dict) else None
        payload = item.get("payload") if isinstance(item, dict) else None
        ns = header.get("namespace") if isinstance(header, dict) else None
        name = header.get("name") if isinstance(header, dict) else None
        if not isinstance(ns, str) or not isinstance(name, str):
            violations.append(Violation(f"context[{i}]", "no header.namespace/name; ignored"))
            continue
        if not isinstance(payload, dict):
            violations.append(Violation(f"context[{i}]", "payload is not an object; ignored"))
            continue
        ns, name = CONTEXT_ALIASES.get((ns, name), (ns, name))
        out.append(ContextObject(ns, name, payload))
    return out


def parse_event_json(document: Any) -> Event:
    """Build an :class:`Event` from the decoded JSON part; raises :class:`BadRequest`."""
    if not isinstance(document, dict):
        raise BadRequest("the JSON part must be an object with 'context' and 'event'")
    raw_event = document.get("event")
    if raw_event is None:
        raise BadRequest("the JSON part has no 'event' object")
    if not isinstance(raw_event, dict):
        raise BadRequest("'event' must be a JSON object")
    header = _parse_header(raw_event.get("header"), "event.header")
    payload = raw_event.get("payload")
    if payload is None:
        raise BadRequest("event.payload is required ({} when empty)")
    if not isinstance(payload, dict):
        raise BadRequest("event.payload must be a JSON object")
    violations: list[Violation] = []
    context = _parse_context(document.get("context"), violations)
    event = Event(header, payload, context, violations)
    # Imported late: the schema tables are large and only needed once messages flow.
    from .schema import inspect_event

    event.violations.extend(inspect_event(event))
    return event


def parse_event_bytes(data: bytes) -> Event:
    """Decode a JSON part (UTF-8, charset case-insensitive per ambiguity #5) into an Event."""
    try:
        document = json.loads(data)
    except UnicodeDecodeError:
        raise BadRequest("the JSON part is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the JSON part is not valid JSON: {exc.msg} at offset {exc.pos}") from None
    except RecursionError:
        raise BadRequest("the JSON part is nested too deeply") from None
    return parse_event_json(document)


def parse_directive_json(document: Any) -> Directive:
    """Client side: decode a directive part. Raises :class:`BadRequest` when unusable."""
    if not isinstance(document, dict) or not isinstance(document.get("directive"), dict):
        raise BadRequest("the JSON part has no 'directive' object")
    raw = document["directive"]
    header = _parse_header(raw.get("header"), "directive.header")
    payload = raw.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise BadRequest("directive.payload must be a JSON object")
    return Directive(header, payload)


def dumps(obj: Any) -> bytes:
    """Compact, strict JSON (ambiguity #23: emit strict JSON) as UTF-8 bytes."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def system_exception(code: int, description: str) -> Directive:
    """The ``System.Exception`` directive of B-ST-01 (never has a dialogRequestId)."""
    return Directive.create("System", "Exception", {"code": code, "description": description})
