"""The committed schema tables against the spec pack (``/work/shared/spec``).

Checks that every catalogued message, context object and template has a schema, that the
generated JSON is what ``tools/gen_schemas.py`` makes from the spec today, and that every
example in the catalogue validates with zero violations. Skipped when the spec pack (or
PyYAML, a test dependency) is not available.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from opencic.protocol.errors import OutboundSchemaError
from opencic.protocol.messages import Directive, Header, parse_event_json
from opencic.protocol.schema import (
    INBOUND_RELAXATIONS,
    relaxation_targets,
    validate_context_object,
    validate_directive_strict,
    validate_payload,
)
from opencic.protocol.schema_data import catalogue, message_spec

REPO = Path(__file__).resolve().parents[2]
SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "spec"
SCHEMA_DIR = REPO / "src" / "opencic" / "protocol" / "schemas"

if not SPEC_DIR.is_dir():
    pytest.skip(f"spec pack not found at {SPEC_DIR}", allow_module_level=True)
yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the spec pack")


def _load(name: str) -> dict[str, Any]:
    with (SPEC_DIR / name).open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


INTERFACES = _load("interfaces.yaml")
CONTEXT = _load("context.yaml")
TEMPLATES = _load("templates.yaml")
PUBLIC = [m for ns in INTERFACES["namespaces"] for m in ns["messages"]]
INTERNAL = INTERFACES["internal_only"]["messages"]


def _qualified(raw: dict[str, Any]) -> str:
    return f"{raw['namespace']}.{raw['name']}"


# Catalogue examples the validator is known to reject, each with its README ambiguity number
# and the exact violations. Empty on purpose: the spec pack's examples are constructed to be
# valid (README: "every constructed example was validated against its own field list").
# The reference-doc examples its doc_anomalies describe are rebuilt in test_schema.py
# (DOC_EXAMPLE_ANOMALIES: #14, #16, #20, #21, #24, #25, #26, #29, #31, #33, #34).
KNOWN_WRONG_EXAMPLES: dict[str, tuple[int, list[str]]] = {}


# --------------------------------------------------------------------------- coverage


def test_every_public_message_and_system_exception_has_a_schema() -> None:
    names = [_qualified(m) for m in PUBLIC]
    assert len(names) == INTERFACES["counts"]["messages"] == 116
    assert sum(m["kind"] == "event" for m in PUBLIC) == 47
    assert sum(m["kind"] == "directive" for m in PUBLIC) == 69
    missing = [n for n in [*names, "System.Exception"] if n not in catalogue().messages]
    assert missing == []
    assert len(catalogue().messages) == 116 + 1 + len(INTERNAL)


def test_internal_only_messages_are_marked() -> None:
    """Ambiguity #17: RequestPlaybackState / SynchronizePlaybackState are internal-only."""
    assert sorted(_qualified(m) for m in INTERNAL) == [
        "AudioPlayer.RequestPlaybackState", "AudioPlayer.SynchronizePlaybackState"]
    internal = sorted(k for k, s in catalogue().messages.items() if s.internal_only)
    assert internal == sorted(_qualified(m) for m in INTERNAL)


@pytest.mark.parametrize("raw", PUBLIC + INTERNAL, ids=_qualified)
def test_message_metadata_matches_the_spec(raw: dict[str, Any]) -> None:
    spec = message_spec(raw["namespace"], raw["name"])
    assert spec is not None
    assert spec.kind == raw["kind"]
    assert spec.deprecated == raw["deprecated"]
    assert spec.channel == (raw["channel"]["effective"] if "channel" in raw else None)
    assert spec.dialog_request_id == raw["dialogRequestId"]["value"]
    assert [f.path for f in spec.fields] == [f["path"] for f in raw["payload"]]


def test_deprecated_messages() -> None:
    deprecated = sorted(k for k, s in catalogue().messages.items() if s.deprecated)
    assert deprecated == [
        "DeviceControl.LaunchApp", "DeviceControl.OpenScreen",
        "PlaybackController.TurnOffRepeatMode", "PlaybackController.TurnOnRepeatMode",
        "PlaybackController.VolumeDown", "PlaybackController.VolumeUp",
    ]


def test_field_counts_match_the_readme() -> None:
    cat = catalogue()
    public = {_qualified(m) for m in PUBLIC}
    assert sum(len(s.fields) for k, s in cat.messages.items() if k in public) == 252
    assert len(cat.shared["AudioStreamInfoObject"]) == 11
    assert sum(len(c.fields) for c in cat.context.values()) == 98
    assert sum(len(c.objects) for c in cat.context.values()) == 15
    assert sum(len(t.fields) for t in cat.templates.values()) == 226
    assert len(cat.common_template_fields) == 5
    assert len(cat.value_objects) == 11


def test_every_context_object_has_a_schema() -> None:
    names = sorted(_qualified(c) for c in CONTEXT["context_objects"])
    assert len(names) == 8
    assert sorted(catalogue().context) == names
    assert names == sorted(INTERFACES["context_sets"]["standard"])


def test_every_template_has_a_schema() -> None:
    types = sorted(t["type"] for t in TEMPLATES["templates"])
    assert len(types) == 23
    assert sorted(catalogue().templates) == types


# --------------------------------------------------------------------------- generated data


def _generator() -> ModuleType:
    path = REPO / "tools" / "gen_schemas.py"
    module_spec = importlib.util.spec_from_file_location("gen_schemas", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_generated_json_is_up_to_date() -> None:
    """Regenerate in memory; a diff means: run ``python tools/gen_schemas.py`` and commit."""
    generated: dict[str, str] = _generator().build(SPEC_DIR)
    assert sorted(generated) == sorted(p.name for p in SCHEMA_DIR.glob("*.json"))
    for name, text in generated.items():
        assert (SCHEMA_DIR / name).read_text(encoding="utf-8") == text, f"{name} is stale"


# --------------------------------------------------------------------------- examples


def _violations_of_example(raw: dict[str, Any]) -> list[str]:
    example = raw["example"]
    if raw["kind"] == "event":
        spec = message_spec(raw["namespace"], raw["name"])
        assert spec is not None
        strict = validate_payload(spec, example["event"]["payload"])
        # The full inbound path too: envelope, payload and context (B-EV-05).
        parsed = parse_event_json(example)
        return [str(v) for v in strict + parsed.violations]
    header = example["directive"]["header"]
    directive = Directive(
        Header(header["namespace"], header["name"], header["messageId"],
               header.get("dialogRequestId")),
        example["directive"]["payload"],
    )
    try:
        validate_directive_strict(directive)
    except OutboundSchemaError as exc:
        return [str(exc)]
    return []


@pytest.mark.parametrize("raw", PUBLIC + INTERNAL, ids=_qualified)
def test_message_example_validates(raw: dict[str, Any]) -> None:
    expected = KNOWN_WRONG_EXAMPLES.get(_qualified(raw), (0, []))[1]
    assert _violations_of_example(raw) == expected


def test_error_example_validates() -> None:
    """B-ST-01: the System.Exception example of CIC_API.md."""
    error = INTERFACES["envelope"]["error"]["example"]["directive"]
    header = Header(error["header"]["namespace"], error["header"]["name"],
                    error["header"]["messageId"])
    validate_directive_strict(Directive(header, error["payload"]))


def test_shared_object_example_validates() -> None:
    """AudioStreamInfoObject's example, carried where CIC sends it (Play) and echoed back."""
    stream = INTERFACES["shared_objects"]["AudioStreamInfoObject"]["example"]
    play = next(m for m in PUBLIC if _qualified(m) == "AudioPlayer.Play")
    payload = {**play["example"]["directive"]["payload"]}
    payload["audioItem"] = {**payload["audioItem"], "stream": stream}
    validate_directive_strict(Directive.create("AudioPlayer", "Play", payload))
    requested = message_spec("AudioPlayer", "StreamRequested")
    assert requested is not None
    assert validate_payload(requested, {"audioItemId": "i", "audioStream": stream}) == []


def _context_examples() -> Iterator[Any]:
    for raw in CONTEXT["context_objects"]:
        examples = [raw["example"]] if "example" in raw else []
        for example in examples + list(raw.get("examples", [])):
            yield pytest.param(example, id=_qualified(raw))


@pytest.mark.parametrize("example", list(_context_examples()))
def test_context_example_validates(example: dict[str, Any]) -> None:
    header = example["header"]
    for inbound in (False, True):
        assert validate_context_object(
            header["namespace"], header["name"], example["payload"], inbound=inbound) == []


@pytest.mark.parametrize("raw", TEMPLATES["templates"], ids=lambda t: t["type"])
def test_template_example_validates(raw: dict[str, Any]) -> None:
    directive = Directive.create("Clova", "RenderTemplate", raw["example"])
    validate_directive_strict(directive)
    spec = message_spec("Clova", "RenderTemplate")
    assert spec is not None
    assert validate_payload(spec, raw["example"], inbound=True) == []


# --------------------------------------------------------------------------- relaxations


def test_every_relaxation_cites_a_readme_ambiguity_and_changes_a_field() -> None:
    """The inbound table must stay honest: each row is a README ambiguity and bites somewhere."""
    readme = (SPEC_DIR / "README.md").read_text(encoding="utf-8")
    documented = {int(n) for n in re.findall(r"^\| (\d+) \|", readme, flags=re.MULTILINE)}
    for rule in INBOUND_RELAXATIONS:
        assert rule.ambiguity in documented, rule
        assert relaxation_targets(rule), f"relaxation for #{rule.ambiguity} matches no field"
