"""Compile catalogue field lists into validation trees (used by :mod:`opencic.protocol.schema`).

A schema is addressed by a *key*: ``Ns.Name`` (message payload), ``context:Ns.Name``,
``context:Ns.Name/SubObject``, ``shared:Name`` or ``template:Type`` (template fields plus
the common template fields). :func:`tree` turns the flat list of dotted paths into a
tree of :class:`Node` once per (key, side, relaxations), resolving ``ref``/``items_ref``
and folding ``[]`` paths into array item nodes, so that walking a payload later is a
handful of dict lookups and ``type()`` comparisons.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from functools import cache
from typing import Any, Final

from .schema_data import FieldSpec, catalogue

Check = Callable[[Any], "str | None"]

# --------------------------------------------------------------------------- relaxations


@dataclass(frozen=True, slots=True)
class Relaxation:
    """One documented tolerance for inbound messages (a row of the spec README table).

    ``schemas`` is an fnmatch pattern over :func:`schema_keys`; ``paths`` are fnmatch
    patterns over field paths. ``action`` is one of: ``optional`` (no longer mandatory),
    ``any_value`` (drop the enum), ``extend_enum`` (add ``values``), ``drop_max``,
    ``partial`` (objects/arrays may be incomplete), ``lenient_date_time``,
    ``extend_object_type`` (template value objects) and ``also_string`` (a boolean may
    also be one of the strings in ``values``).
    """

    ambiguity: int
    schemas: str
    paths: tuple[str, ...]
    action: str
    values: tuple[str, ...] = ()
    why: str = ""


def relax(field: FieldSpec, rule: Relaxation) -> FieldSpec:
    """``field`` as ``rule`` tolerates it (the same object when the rule changes nothing)."""
    action = rule.action
    if action == "optional" and field.required != "Optional":
        return replace(field, required="Optional")
    if action == "any_value" and field.enum is not None:
        return replace(field, enum=None)
    if action == "extend_enum" and field.enum is not None:
        extra = tuple(v for v in rule.values if v not in field.enum)
        return replace(field, enum=field.enum + extra) if extra else field
    if action == "drop_max" and field.max is not None:
        return replace(field, max=None)
    if action == "partial" and field.type in ("object", "array") and not field.partial_ok:
        return replace(field, partial_ok=True)
    if action == "lenient_date_time" and field.format == "date-time":
        return replace(field, format="date-time-lenient")
    if action == "extend_object_type" and field.object_type:
        extra = tuple(v for v in rule.values if v not in field.object_type)
        return replace(field, object_type=field.object_type + extra) if extra else field
    if action == "also_string" and field.type == "boolean":
        return replace(field, type="boolean|string", enum=rule.values)
    return field


def applies(rule: Relaxation, key: str, path: str) -> bool:
    return fnmatchcase(key, rule.schemas) and any(fnmatchcase(path, p) for p in rule.paths)


def relaxation_targets(rule: Relaxation) -> list[tuple[str, str]]:
    """The ``(schema key, field path)`` pairs ``rule`` actually changes."""
    return [
        (key, field.path)
        for key in schema_keys()
        for field in fields_of(key, ())
        if applies(rule, key, field.path) and relax(field, rule) is not field
    ]


# --------------------------------------------------------------------------- schema lookup


def schema_keys() -> list[str]:
    cat = catalogue()
    return [
        *cat.messages,
        *(f"context:{k}" for k in cat.context),
        *(f"shared:{k}" for k in cat.shared),
        *(f"template:{k}" for k in cat.templates),
    ]


@cache
def fields_of(key: str, relaxations: tuple[Relaxation, ...]) -> tuple[FieldSpec, ...]:
    """The field list behind a schema key, with ``relaxations`` applied."""
    cat = catalogue()
    kind, _, name = key.rpartition(":")
    if kind == "context":
        ctx_name, _, sub = name.partition("/")
        ctx = cat.context[ctx_name]
        fields = ctx.objects[sub] if sub else ctx.fields
    elif kind == "shared":
        fields = cat.shared[name]
    elif kind == "template":
        own = cat.templates[name].fields
        paths = {f.path for f in own}
        fields = tuple(f for f in cat.common_template_fields if f.path not in paths) + own
    else:
        fields = cat.messages[name].fields
    for rule in relaxations:
        fields = tuple(relax(f, rule) if applies(rule, key, f.path) else f for f in fields)
    return fields


def _ref_key(ref: str, owner: str) -> str:
    """Resolve ``ref``/``items_ref``: shared object, sibling sub-object, context or message."""
    cat = catalogue()
    if ref in cat.shared:
        return f"shared:{ref}"
    if owner.startswith("context:"):
        ctx_name = owner[len("context:"):].partition("/")[0]
        if ref in cat.context[ctx_name].objects:
            return f"context:{ctx_name}/{ref}"
    if ref in cat.context:
        return f"context:{ref}"
    message = ref.removesuffix("#payload")
    if message != ref and message in cat.messages:
        return message
    raise KeyError(f"{owner}: unresolvable ref {ref!r}")


# --------------------------------------------------------------------------- scalar checks

DATE_TIME: Final = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)"
)
# RFC 3339 section 5.6 lets "T"/"Z" be lowercase and (by its note) a space separate the parts.
DATE_TIME_LENIENT: Final = re.compile(
    DATE_TIME.pattern.replace("T(", "[Tt ](").replace("(Z|", "([Zz]|")
)
_FORMATS: Final = {"date-time": DATE_TIME, "date-time-lenient": DATE_TIME_LENIENT}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPE_CHECKS: Final[dict[str, Callable[[Any], bool]]] = {
    "string": lambda v: isinstance(v, str),
    "number": _is_number,
    "integer": _is_integer,
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}
# Exact classes that settle a type on their own: the walker's fast path compares type(value)
# with them (bool is no number there; subclasses simply take the slow path).
_PLAIN_TYPES: Final[dict[str, frozenset[type]]] = {
    "string": frozenset({str}), "boolean": frozenset({bool}), "object": frozenset({dict}),
    "array": frozenset({list}), "number": frozenset({int, float}), "integer": frozenset({int}),
}


def _type_check(type_name: str) -> Callable[[Any], bool]:
    checks = [_TYPE_CHECKS[t] for t in type_name.split("|")]
    if len(checks) == 1:
        return checks[0]
    return lambda v: any(check(v) for check in checks)


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    names: dict[type, str] = {str: "string", dict: "object", list: "array"}
    return names.get(type(value), type(value).__name__)


def _max_bytes(limit: int) -> Check:
    def check(value: str) -> str | None:
        # A character is at most 4 UTF-8 bytes, so most values never need encoding;
        # surrogatepass because json.loads happily yields lone surrogates.
        if len(value) * 4 <= limit or len(value.encode("utf-8", "surrogatepass")) <= limit:
            return None
        return f"longer than {limit} bytes in UTF-8"

    return check


def _matches(regex: re.Pattern[str], problem: str) -> Check:
    return lambda value: None if regex.fullmatch(value) else problem


def _searches(regex: re.Pattern[str]) -> Check:
    return lambda value: None if regex.search(value) else f"does not match {regex.pattern}"


def _bound(limit: float, *, upper: bool) -> Check:
    if upper:
        return lambda v: f"above the maximum {limit:g}" if v > limit else None
    return lambda v: f"below the minimum {limit:g}" if v < limit else None


def _scalar_checks(field: FieldSpec) -> tuple[Check, ...]:
    checks: list[Check] = []
    if field.max_bytes is not None:
        checks.append(_max_bytes(field.max_bytes))
    if field.format is not None:
        checks.append(_matches(_FORMATS[field.format], "not an RFC 3339 date-time"))
    if field.pattern is not None:
        checks.append(_searches(re.compile(field.pattern)))
    if field.min is not None:
        checks.append(_bound(field.min, upper=False))
    if field.max is not None:
        checks.append(_bound(field.max, upper=True))
    return tuple(checks)


# --------------------------------------------------------------------------- nodes


class Node:
    """A compiled field: object nodes hold ``children``, array nodes an ``item`` node."""

    __slots__ = (
        "check", "checks", "children", "enum", "enum_text", "item", "nullable", "partial",
        "plain_types", "required", "required_keys", "type_name", "values",
    )

    def __init__(self, type_name: str, *, required: bool = False) -> None:
        self.type_name = type_name
        self.check = _type_check(type_name)
        self.required = required
        self.nullable = False
        self.enum: frozenset[str] | None = None
        self.enum_text = ""
        self.checks: tuple[Check, ...] = ()
        self.children: dict[str, Node] = {}
        self.required_keys: tuple[str, ...] = ()
        self.item: Node | None = None
        self.values: Node | None = None  # type of every member (values_type)
        self.partial = False  # members below need not be complete (partial_ok)
        # Set by seal() when the exact type (plus enum) is all there is to check.
        self.plain_types: frozenset[type] | None = None

    def set_enum(self, values: tuple[str, ...] | None) -> None:
        self.enum = None if values is None else frozenset(values)
        self.enum_text = "" if values is None else ", ".join(values)

    def copy(self) -> Node:
        twin = Node.__new__(Node)
        for slot in Node.__slots__:
            setattr(twin, slot, getattr(self, slot))
        twin.children = dict(self.children)
        return twin

    def seal(self) -> None:
        self.required_keys = tuple(k for k, child in self.children.items() if child.required)
        has_more = self.checks or self.children or self.item or self.values
        self.plain_types = None if has_more else _PLAIN_TYPES.get(self.type_name)


@dataclass(slots=True)
class _Build:
    key: str
    directive: bool  # which half of a split Required/Always value applies
    relaxations: tuple[Relaxation, ...]
    owned: set[int]  # nodes made by this build; borrowed (ref) nodes are copied on write


def _value_object(names: tuple[str, ...], value_enum: tuple[str, ...] | None) -> dict[str, Node]:
    """Children of a template value object ``{type, value}`` (a list of names: any of them)."""
    specs = [catalogue().value_objects[n] for n in names]
    type_node = Node("string", required=True)
    type_node.set_enum(tuple(dict.fromkeys(t for s in specs for t in s.type_value)))
    value_types = "|".join(dict.fromkeys(t for s in specs for t in s.value_type))
    value_node = Node(value_types, required=True)
    value_node.set_enum(value_enum)
    return {"type": type_node, "value": value_node}


def _ref_children(ref: str, build: _Build, partial: bool) -> dict[str, Node]:
    target = _ref_key(ref, build.key)
    return dict(tree(target, build.directive, build.relaxations, partial).children)


def _array_item(field: FieldSpec, build: _Build, partial: bool) -> Node | None:
    if field.items is None:
        return None
    item = Node(field.items)
    item.partial = partial
    if field.items == "object":
        if field.items_ref:
            item.children = _ref_children(field.items_ref, build, partial)
        elif field.items_object_type:
            item.children = _value_object(field.items_object_type, None)
    else:
        item.set_enum(field.enum)  # an enum on array<string> lists the allowed elements
    return item


def _field_node(field: FieldSpec, build: _Build, partial: bool) -> Node:
    required = not partial and field.is_mandatory(directive=build.directive)
    below = partial or field.partial_ok
    node = Node(field.type, required=required)
    node.nullable = field.nullable
    node.partial = below
    if field.type == "array":
        node.item = _array_item(field, build, below)
        return node
    node.set_enum(field.enum)
    node.checks = _scalar_checks(field)
    if field.ref:
        node.children = _ref_children(field.ref, build, below)
    elif field.object_type:
        node.children = _value_object(field.object_type, field.value_enum)
    if field.values_type:
        node.values = Node(field.values_type)
    return node


def _descend(parent: Node, name: str, is_array: bool, build: _Build) -> Node:
    """The node under which ``name``'s children go, made or copied so it may be edited."""
    node = parent.children.get(name)
    if node is None:
        node = Node("array" if is_array else "object")
        node.partial = parent.partial
    elif id(node) not in build.owned:
        node = node.copy()
    build.owned.add(id(node))
    parent.children[name] = node
    if not is_array:
        return node
    if node.item is None or id(node.item) not in build.owned:
        node.item = node.item.copy() if node.item is not None else Node("object")
        node.item.partial = node.partial or node.item.partial
        build.owned.add(id(node.item))
    return node.item


def _place(root: Node, field: FieldSpec, build: _Build) -> None:
    *parents, last = field.path.split(".")
    parent = root
    for segment in parents:
        parent = _descend(parent, segment.removesuffix("[]"), segment.endswith("[]"), build)
    node = _field_node(field, build, parent.partial)
    build.owned.add(id(node))
    if node.item is not None:
        build.owned.add(id(node.item))
    parent.children[last.removesuffix("[]")] = node


def _seal(node: Node, seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    node.seal()
    for child in (*node.children.values(), node.item, node.values):
        if child is not None:
            _seal(child, seen)


@cache
def tree(
    key: str, directive: bool, relaxations: tuple[Relaxation, ...] = (), partial: bool = False
) -> Node:
    """The compiled payload tree of ``key`` (built once, then shared: never mutate it).

    ``directive`` picks the second half of split ``Required/Always`` values; ``partial``
    makes every member optional (``partial_ok``).
    """
    build = _Build(key, directive, relaxations, set())
    root = Node("object")
    root.partial = partial
    # Parents before children, so that a child never has to patch a node made later.
    for field in sorted(fields_of(key, relaxations), key=lambda f: f.path.count(".")):
        _place(root, field, build)
    _seal(root, set())
    return root
