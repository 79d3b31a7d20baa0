"""The payload catalogue: typed views of the JSON tables in ``schemas/``.

The tables are generated from the spec pack by ``tools/gen_schemas.py`` and committed;
this module only reads them (stdlib ``json`` through :mod:`importlib.resources`, once,
on first use) and turns each field into a frozen :class:`FieldSpec`. Validation lives in
:mod:`opencic.protocol.schema`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_PACKAGE = "opencic.protocol"
SCHEMA_DIR = "schemas"

# "Required" is the event vocabulary, "Always" the directive one (interfaces.yaml conventions).
MANDATORY = frozenset({"Required", "Always"})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One catalogued field; ``path`` is dotted with ``[]`` marking arrays."""

    path: str
    type: str
    required: str
    enum: tuple[str, ...] | None = None
    items: str | None = None
    nullable: bool = False
    max_bytes: int | None = None
    format: str | None = None
    pattern: str | None = None
    min: float | None = None
    max: float | None = None
    ref: str | None = None
    items_ref: str | None = None
    values_type: str | None = None
    partial_ok: bool = False
    special_values: tuple[str, ...] = ()
    # Content templates only: typed value objects {type, value} (templates.yaml).
    object_type: tuple[str, ...] = ()
    items_object_type: tuple[str, ...] = ()
    value_enum: tuple[str, ...] | None = None

    def is_mandatory(self, *, directive: bool) -> bool:
        """Whether the field must be present when its parent is.

        Shared objects use split values such as ``Required/Always``: the first half
        applies when a client sends the object, the second when CIC sends it.
        """
        required = self.required
        if "/" in required:
            client_side, server_side = required.split("/", 1)
            required = server_side if directive else client_side
        return required in MANDATORY


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """A catalogued event or directive (interfaces.yaml ``namespaces[].messages[]``)."""

    namespace: str
    name: str
    kind: str  # "event" | "directive"
    deprecated: bool
    channel: str | None  # effective channel of a directive; None for events
    dialog_request_id: str  # required | set | not_set | conditional
    dialog_request_id_basis: str  # stated | example | rule
    fields: tuple[FieldSpec, ...]
    internal_only: bool = False
    payload_variants: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (when, payload keys)
    payload_ref: str | None = None  # Clova.RenderTemplate: the template named by payload.type

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def is_directive(self) -> bool:
        return self.kind == "directive"


@dataclass(frozen=True, slots=True)
class ContextSpec:
    namespace: str
    name: str
    fields: tuple[FieldSpec, ...]
    objects: Mapping[str, tuple[FieldSpec, ...]]  # sub-objects such as AlertInfoObject

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    type: str
    group: str  # ui | pims | weather
    fields: tuple[FieldSpec, ...]


@dataclass(frozen=True, slots=True)
class ValueObjectSpec:
    """A template value object ``{type, value}``: allowed ``type`` names and value types."""

    type_value: tuple[str, ...]
    value_type: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Catalogue:
    messages: Mapping[str, MessageSpec]
    context: Mapping[str, ContextSpec]
    shared: Mapping[str, tuple[FieldSpec, ...]]
    templates: Mapping[str, TemplateSpec]
    common_template_fields: tuple[FieldSpec, ...]
    value_objects: Mapping[str, ValueObjectSpec]


def _tuple(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _field(raw: Mapping[str, Any]) -> FieldSpec:
    return FieldSpec(
        path=raw["path"],
        type=raw["type"],
        required=raw["required"],
        enum=_tuple(raw.get("enum")),
        items=raw.get("items"),
        nullable=bool(raw.get("nullable", False)),
        max_bytes=raw.get("max_bytes"),
        format=raw.get("format"),
        pattern=raw.get("pattern"),
        min=raw.get("min"),
        max=raw.get("max"),
        ref=raw.get("ref"),
        items_ref=raw.get("items_ref"),
        values_type=raw.get("values_type"),
        partial_ok=bool(raw.get("partial_ok", False)),
        special_values=tuple(raw.get("special_values", ())),
        object_type=tuple(raw.get("object_type", ())),
        items_object_type=tuple(raw.get("items_object_type", ())),
        value_enum=_tuple(raw.get("value_enum")),
    )


def _fields(raw: list[Mapping[str, Any]]) -> tuple[FieldSpec, ...]:
    return tuple(_field(f) for f in raw)


def _message(raw: Mapping[str, Any]) -> MessageSpec:
    return MessageSpec(
        namespace=raw["namespace"],
        name=raw["name"],
        kind=raw["kind"],
        deprecated=bool(raw["deprecated"]),
        channel=raw["channel"],
        dialog_request_id=raw["dialog_request_id"],
        dialog_request_id_basis=raw["dialog_request_id_basis"],
        fields=_fields(raw["fields"]),
        internal_only=bool(raw.get("internal_only", False)),
        payload_variants=tuple(
            (v["when"], tuple(v["payload_keys"])) for v in raw.get("payload_variants", ())
        ),
        payload_ref=raw.get("payload_ref"),
    )


def _read(name: str) -> Any:
    text = resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_DIR, name).read_text(encoding="utf-8")
    return json.loads(text)


@cache
def catalogue() -> Catalogue:
    """Load every table once; later calls return the same object."""
    messages = _read("messages.json")["messages"]
    context = _read("context.json")["context_objects"]
    shared = _read("shared.json")
    templates = _read("templates.json")
    return Catalogue(
        messages={k: _message(v) for k, v in messages.items()},
        context={
            k: ContextSpec(
                v["namespace"],
                v["name"],
                _fields(v["fields"]),
                {n: _fields(fs) for n, fs in v.get("objects", {}).items()},
            )
            for k, v in context.items()
        },
        shared={k: _fields(v["fields"]) for k, v in shared.items()},
        templates={
            k: TemplateSpec(k, v["group"], _fields(v["fields"]))
            for k, v in templates["templates"].items()
        },
        common_template_fields=_fields(templates["common_fields"]),
        value_objects={
            k: ValueObjectSpec(tuple(v["type_value"]), tuple(v["value_type"]))
            for k, v in templates["value_objects"].items()
        },
    )


def message_spec(namespace: str, name: str) -> MessageSpec | None:
    """The catalogued event/directive ``namespace.name`` (internal-only ones included)."""
    return catalogue().messages.get(f"{namespace}.{name}")


def context_spec(namespace: str, name: str) -> ContextSpec | None:
    return catalogue().context.get(f"{namespace}.{name}")


def template_spec(template_type: str) -> TemplateSpec | None:
    return catalogue().templates.get(template_type)
