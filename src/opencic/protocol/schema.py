"""Payload validation against the CIC catalogue (sans-I/O, stdlib only).

Conventions (interfaces.yaml / context.yaml ``conventions``):

* paths are dotted, ``[]`` marks an array; violations name the concrete place,
  e.g. ``payload.assets[0].url``;
* a child marked Required (events) / Always (directives) is mandatory only when its
  parent object or array element is present; Optional/Conditional never violate by
  absence; shared objects use split values (``Required/Always``: client side first);
* ``bool`` is not a number; ``integer`` accepts integral floats; ``enum`` on an
  ``array<string>`` constrains the elements; unknown keys are always allowed (B-UN-02).

Each schema is compiled once (:mod:`opencic.protocol.schema_tree`) in two readings:
*strict*, what we emit, and *inbound*, what we tolerate from real peers, which adds the
documented relaxations of :data:`INBOUND_RELAXATIONS` and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from .errors import OutboundSchemaError
from .messages import CONTEXT_ALIASES, Directive, Event, Violation
from .schema_data import MessageSpec, catalogue, message_spec
from .schema_tree import Node, Relaxation, json_type, relaxation_targets, schema_keys, tree

__all__ = [
    "INBOUND_RELAXATIONS",
    "MessageSpec",
    "Relaxation",
    "inspect_event",
    "message_spec",
    "relaxation_targets",
    "schema_keys",
    "validate_context_object",
    "validate_directive_strict",
    "validate_payload",
]

log = logging.getLogger(__name__)

# The only places where the inbound reading departs from the catalogue. Each row cites the
# ambiguity of the spec README table it implements; a test checks every row still hits
# a field, so a spec change cannot silently turn one into a no-op.
INBOUND_RELAXATIONS: Final[tuple[Relaxation, ...]] = (
    # --- events: what the server tolerates from devices
    Relaxation(24, "SpeechRecognizer.Recognize", ("lang",), "optional",
               why="follow-up examples omit lang; fall back to the device/account language"),
    Relaxation(25, "context:Speaker.VolumeState", ("volume",), "drop_max",
               why="documented 0-10 but examples send 25: any non-negative number"),
    Relaxation(26, "context:AudioPlayer.PlaybackState", ("playerActivity",), "extend_enum",
               ("PAUSE",), why="the guide spells PAUSED as PAUSE"),
    Relaxation(26, "AudioPlayer.ReportPlaybackState", ("playerActivity",), "extend_enum",
               ("PAUSE",), why="same player states as the PlaybackState context"),
    Relaxation(29, "*", ("*",), "lenient_date_time",
               why="any RFC 3339 date-time: also lowercase t/z and the space separator"),
    Relaxation(31, "context:Device.DeviceState", ("*",), "partial",
               why="the reference example sends info objects without their Required members"),
    Relaxation(20, "PlaybackController.*CommandIssued", ("source.namespace",), "extend_enum",
               ("MediaPlayer",), why="Expect*Command targets, echoed here, allow MediaPlayer"),
    Relaxation(21, "DeviceControl.ActionExecuted", ("command", "target"), "any_value",
               why="the DeviceControl vocabularies disagree; clients echo what they received"),
    Relaxation(21, "DeviceControl.ActionFailed", ("command", "target"), "any_value",
               why="the DeviceControl vocabularies disagree; clients echo what they received"),
    # --- directives: what the SDK tolerates from a server
    Relaxation(14, "Clova.ExpectLogin", ("guideInfo.useDefault",), "also_string",
               ("true", "false"), why='an extension example sends "useDefault": "false"'),
    Relaxation(16, "AudioPlayer.Play", ("audioItem.titleText", "audioItem.titleSubText1"),
               "optional", why="Play examples omit the display texts; fall back to empty text"),
    Relaxation(33, "TemplateRuntime.RenderPlayerInfo", ("*controls[].name",), "any_value",
               why="the example uses LIKE_DISLIKE; unknown controls are ignored"),
    Relaxation(34, "template:*", ("failureMessage", "meta", "meta.version"), "optional",
               why="most template examples omit the common Always fields"),
    Relaxation(34, "template:Atmosphere", ("valueOfAtmosphere",), "extend_object_type",
               ("NumberObject",), why="the Common_Fields example types it as a number"),
)

_ROOTS: dict[tuple[str, bool, bool], Node] = {}


def _root(key: str, directive: bool, inbound: bool) -> Node:
    """Compiled tree of ``key``; a plain dict in front of the cache keeps this hot path cheap."""
    memo = (key, directive, inbound)
    node = _ROOTS.get(memo)
    if node is None:
        node = _ROOTS[memo] = tree(key, directive, INBOUND_RELAXATIONS if inbound else ())
    return node


# --------------------------------------------------------------------------- walking


def _walk(node: Node, value: Any, where: str, out: list[Violation]) -> None:
    if value is None:
        if not node.nullable:
            out.append(Violation(where, f"expected {node.type_name}, got null"))
        return
    if not node.check(value):
        out.append(Violation(where, f"expected {node.type_name}, got {json_type(value)}"))
        return
    if node.enum is not None and isinstance(value, str) and value not in node.enum:
        out.append(Violation(where, f"{value!r} is not one of: {node.enum_text}"))
    for check in node.checks:
        problem = check(value)
        if problem is not None:
            out.append(Violation(where, problem))
    if isinstance(value, dict):
        _members(node, value, where, out)
    elif node.item is not None and isinstance(value, list):
        item = node.item
        for i, element in enumerate(value):
            if not _settled(item, element):
                _walk(item, element, f"{where}[{i}]", out)


def _settled(node: Node, value: Any) -> bool:
    """Fast path: a leaf whose exact type (and enum) is all there is to check."""
    plain = node.plain_types
    if plain is None or type(value) not in plain:
        return False
    return node.enum is None or value in node.enum


def _members(node: Node, value: dict[str, Any], where: str, out: list[Violation]) -> None:
    children = node.children
    if children:
        for key, member in value.items():
            child = children.get(key)
            if child is None:
                continue  # unknown keys are allowed (B-UN-02)
            # _settled() inlined: this loop is the hot path of inspect_event, and the path
            # string is only built for members that need a closer look.
            plain = child.plain_types
            if plain is not None and type(member) in plain:
                enum = child.enum
                if enum is None or member in enum:
                    continue
            _walk(child, member, f"{where}.{key}", out)
        for key in node.required_keys:
            if key not in value:
                out.append(Violation(f"{where}.{key}", "required field is missing"))
    if node.values is not None:
        for key, member in value.items():
            _walk(node.values, member, f"{where}.{key}", out)


# --------------------------------------------------------------------------- public API


def _variants(spec: MessageSpec, payload: Mapping[str, Any], out: list[Violation]) -> None:
    """Payloads documented as alternative key sets (e.g. BtConnect, B-BT-02) must match one."""
    declared = {f.path.split(".")[0] for f in spec.fields}
    present = sorted(k for k in payload if k in declared)
    if not any(sorted(keys) == present for _, keys in spec.payload_variants):
        allowed = " | ".join(f"[{', '.join(keys)}]" for _, keys in spec.payload_variants)
        out.append(Violation("payload", f"keys [{', '.join(present)}] match no variant: {allowed}"))


def _template_root(payload: Mapping[str, Any], inbound: bool, out: list[Violation]) -> Node | None:
    """Clova.RenderTemplate carries one content template, named by ``payload.type``."""
    template_type = payload.get("type")
    if not isinstance(template_type, str):
        out.append(Violation("payload.type", "template type is missing or not a string"))
        return None
    if template_type not in catalogue().templates:
        out.append(Violation("payload.type", f"unknown template type {template_type!r}"))
        return None
    return _root(f"template:{template_type}", True, inbound)


def validate_payload(spec: MessageSpec, payload: Any, *, inbound: bool = False) -> list[Violation]:
    """Every way ``payload`` departs from ``spec``; paths start with ``payload``.

    ``inbound=True`` applies :data:`INBOUND_RELAXATIONS` (what we accept from peers);
    the default is the strict reading we emit by.
    """
    if not isinstance(payload, dict):
        return [Violation("payload", f"expected object, got {json_type(payload)}")]
    out: list[Violation] = []
    if spec.payload_ref is not None:
        root = _template_root(payload, inbound, out)
    else:
        root = _root(spec.qualified_name, spec.is_directive, inbound)
    if root is not None:
        _walk(root, payload, "payload", out)
    if spec.payload_variants:
        _variants(spec, payload, out)
    return out


def validate_context_object(
    namespace: str, name: str, payload: Any, *, inbound: bool = True
) -> list[Violation]:
    """Check one context object's payload (context.yaml); unknown objects are a violation."""
    namespace, name = CONTEXT_ALIASES.get((namespace, name), (namespace, name))
    qualified = f"{namespace}.{name}"
    if qualified not in catalogue().context:
        return [Violation("header", f"unknown context object {qualified}")]
    if not isinstance(payload, dict):
        return [Violation("payload", f"expected object, got {json_type(payload)}")]
    out: list[Violation] = []
    _walk(_root(f"context:{qualified}", False, inbound), payload, "payload", out)
    return out


def _inspect(event: Event) -> list[Violation]:
    header = event.header
    spec = message_spec(header.namespace, header.name)
    out: list[Violation] = []
    if spec is None:
        out.append(Violation("event.header", f"unknown event {header.qualified_name}"))
    elif spec.is_directive:
        out.append(Violation("event.header", f"{header.qualified_name} is a directive, not an event"))
    else:
        out.extend(validate_payload(spec, event.payload, inbound=True))
        if spec.dialog_request_id == "required" and not header.dialog_request_id:
            # B-DI-01: the client makes a fresh dialogue ID for every Recognize.
            out.append(Violation("event.header.dialogRequestId", "missing on a Recognize event"))
    for obj in event.context:
        where = f"context[{obj.qualified_name}]"
        for v in validate_context_object(obj.namespace, obj.name, obj.payload, inbound=True):
            out.append(Violation(where if v.where == "header" else f"{where}.{v.where}", v.problem))
    return out


def inspect_event(event: Event) -> list[Violation]:
    """Record (never raise) how an inbound event departs from the catalogue.

    Covers the message name, its payload and every context object, with the inbound
    relaxations applied. Called by ``parse_event_json`` on every request.
    """
    try:
        return _inspect(event)
    except Exception:
        # A validator bug must cost a log line, not the device's request.
        log.exception("schema inspection failed for %s", event.header.qualified_name)
        return [Violation("event", "could not be inspected (validator error; see log)")]


def validate_directive_strict(directive: Directive) -> None:
    """Raise :class:`OutboundSchemaError` listing every violation of a directive we emit.

    Strict: the name must be a catalogued directive, Always fields must be present,
    enums hold, and Clova.RenderTemplate is checked against its template.
    """
    qualified = directive.qualified_name
    spec = message_spec(directive.header.namespace, directive.header.name)
    if spec is None or not spec.is_directive:
        what = "unknown directive" if spec is None else "an event, not a directive"
        raise OutboundSchemaError(f"{qualified}: {what}")
    violations = validate_payload(spec, directive.payload, inbound=False)
    stated_unset = spec.dialog_request_id == "not_set" and spec.dialog_request_id_basis == "stated"
    if stated_unset and directive.header.dialog_request_id is not None:
        # B-ST-01, B-DC-02, B-DC-08: Exception, Hello and SynchronizeState carry no dialogue ID.
        violations.append(Violation("header.dialogRequestId", "must not be set"))
    if violations:
        listing = "; ".join(str(v) for v in violations)
        raise OutboundSchemaError(f"{qualified} fails its schema: {listing}")
