#!/usr/bin/env python3
"""Generate the compact schema tables in ``src/opencic/protocol/schemas/`` from the spec pack.

Usage::

    python tools/gen_schemas.py [SPEC_DIR]      # default: ../shared/spec relative to the repo root

Needs PyYAML (a developer/test dependency only). The runtime never reads the YAML: the
generated JSON is committed and loaded by :mod:`opencic.protocol.schema_data`. Only what
validation needs is kept (descriptions, notes and examples stay in the spec pack), and
the output is deterministic (sorted keys, fixed layout) so that a test can regenerate it
in memory and compare it with the committed files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC_DIR = REPO_ROOT.parent / "shared" / "spec"
OUT_DIR = REPO_ROOT / "src" / "opencic" / "protocol" / "schemas"

# Field attributes a validator acts on; everything else in the spec is prose.
FIELD_KEYS = (
    "path", "type", "required", "enum", "items", "nullable", "max_bytes", "format", "pattern",
    "min", "max", "ref", "items_ref", "values_type", "partial_ok", "special_values",
)
# Template fields say ``included`` instead of ``required`` and carry typed value objects.
TEMPLATE_FIELD_KEYS = (
    "path", "type", "enum", "items", "nullable", "object_type", "items_object_type", "value_enum",
)
ERROR_PAYLOAD_PREFIX = "directive.payload."


def _field(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: raw[k] for k in FIELD_KEYS if k in raw}


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _template_field(raw: dict[str, Any]) -> dict[str, Any]:
    out = {k: raw[k] for k in TEMPLATE_FIELD_KEYS if k in raw}
    out["required"] = raw["included"]
    # A list of object types means "any of them"; normalise single names to one-element lists.
    for key in ("object_type", "items_object_type"):
        if key in out:
            out[key] = _as_list(out[key])
    return out


def _message(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "namespace": raw["namespace"],
        "name": raw["name"],
        "kind": raw["kind"],
        "deprecated": bool(raw.get("deprecated", False)),
        "channel": raw["channel"]["effective"] if "channel" in raw else None,
        "dialog_request_id": raw["dialogRequestId"]["value"],
        "dialog_request_id_basis": raw["dialogRequestId"]["basis"],
        "fields": [_field(f) for f in raw.get("payload") or []],
    }
    if raw.get("internal_only"):
        out["internal_only"] = True
    for key in ("payload_variants", "payload_ref"):
        if key in raw:
            out[key] = raw[key]
    return out


def _system_exception(error: dict[str, Any]) -> dict[str, Any]:
    """``System.Exception`` lives only in ``envelope.error``; keep its payload fields."""
    fields = [
        {**_field(f), "path": f["path"][len(ERROR_PAYLOAD_PREFIX):]}
        for f in error["fields"]
        if f["path"].startswith(ERROR_PAYLOAD_PREFIX)
    ]
    return {
        "namespace": error["namespace"],
        "name": error["name"],
        "kind": "directive",
        "deprecated": False,
        # It is the body of whichever HTTP response failed (B-ST-01), never a downchannel push.
        "channel": "response",
        "dialog_request_id": error["dialogRequestId"]["value"],
        "dialog_request_id_basis": error["dialogRequestId"]["basis"],
        "fields": fields,
    }


def build_messages(interfaces: dict[str, Any]) -> dict[str, Any]:
    messages: dict[str, Any] = {}
    raw_messages = [m for ns in interfaces["namespaces"] for m in ns["messages"]]
    raw_messages += interfaces["internal_only"]["messages"]
    for raw in raw_messages:
        messages[f"{raw['namespace']}.{raw['name']}"] = _message(raw)
    exc = _system_exception(interfaces["envelope"]["error"])
    messages[f"{exc['namespace']}.{exc['name']}"] = exc
    return {"messages": messages}


def build_shared(interfaces: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {"fields": [_field(f) for f in obj["fields"]]}
        for name, obj in interfaces["shared_objects"].items()
    }


def build_context(context: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw in context["context_objects"]:
        entry: dict[str, Any] = {
            "namespace": raw["namespace"],
            "name": raw["name"],
            "fields": [_field(f) for f in raw["payload"]],
        }
        objects = raw.get("objects") or {}
        if objects:
            entry["objects"] = {n: [_field(f) for f in fs] for n, fs in objects.items()}
        out[f"{raw['namespace']}.{raw['name']}"] = entry
    return {"context_objects": out}


def build_templates(templates: dict[str, Any]) -> dict[str, Any]:
    value_objects = {
        name: {"type_value": _as_list(obj["type_value"]), "value_type": _as_list(obj["value_type"])}
        for name, obj in templates["shared_objects"].items()
    }
    return {
        "common_fields": [_template_field(f) for f in templates["common_fields"]["fields"]],
        "value_objects": value_objects,
        "templates": {
            t["type"]: {"group": t["group"], "fields": [_template_field(f) for f in t["fields"]]}
            for t in templates["templates"]
        },
    }


def _is_leaf(obj: Any) -> bool:
    if isinstance(obj, dict):
        return "path" in obj or not any(isinstance(v, (dict, list)) for v in obj.values())
    if isinstance(obj, list):
        return not any(isinstance(v, (dict, list)) for v in obj)
    return True


def _dumps(obj: Any, indent: int = 0) -> str:
    """JSON with one field (or scalar container) per line, sorted keys.

    Fully compact JSON is unreviewable in a diff, fully indented JSON is several times
    larger; one line per field is the useful middle ground.
    """
    if _is_leaf(obj) or not obj:
        return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    pad = " " * (indent + 1)
    if isinstance(obj, dict):
        items = [
            f"{pad}{json.dumps(k, ensure_ascii=False)}:{_dumps(obj[k], indent + 1)}"
            for k in sorted(obj)
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{pad}{_dumps(v, indent + 1)}" for v in obj]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def _load(spec_dir: Path, name: str) -> dict[str, Any]:
    with (spec_dir / name).open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise SystemExit(f"{spec_dir / name}: not a YAML mapping")
    return data


def build(spec_dir: Path) -> dict[str, str]:
    """Return ``{file name: JSON text}`` for every generated file (no writing)."""
    interfaces = _load(spec_dir, "interfaces.yaml")
    context = _load(spec_dir, "context.yaml")
    templates = _load(spec_dir, "templates.yaml")
    return {
        "messages.json": _dumps(build_messages(interfaces)) + "\n",
        "context.json": _dumps(build_context(context)) + "\n",
        "shared.json": _dumps(build_shared(interfaces)) + "\n",
        "templates.json": _dumps(build_templates(templates)) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec_dir", nargs="?", type=Path, default=DEFAULT_SPEC_DIR)
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    args = parser.parse_args(argv)
    outputs = build(args.spec_dir)
    stale = []
    for name, text in outputs.items():
        target: Path = args.out / name
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("stale: " + ", ".join(stale), file=sys.stderr)
        return 1
    for name in stale:
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
