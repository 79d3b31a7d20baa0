"""Unit tests of the payload validator (opencic.protocol.schema) on the committed tables.

Each test names the convention of interfaces.yaml/context.yaml it pins down, or the
behaviour rule (B-...) / README ambiguity (#n) it implements.
"""

from __future__ import annotations

import dataclasses
import timeit
from typing import Any

import pytest

from opencic.protocol import schema
from opencic.protocol.errors import OutboundSchemaError
from opencic.protocol.messages import ContextObject, Directive, Event, Violation, parse_event_json
from opencic.protocol.schema import (
    INBOUND_RELAXATIONS,
    MessageSpec,
    inspect_event,
    message_spec,
    schema_keys,
    validate_context_object,
    validate_directive_strict,
    validate_payload,
)
from opencic.protocol.schema_data import FieldSpec, catalogue
from opencic.protocol.schema_tree import tree


def spec_of(qualified: str) -> MessageSpec:
    namespace, _, name = qualified.partition(".")
    spec = message_spec(namespace, name)
    assert spec is not None, qualified
    return spec


def check(qualified: str, payload: Any, *, inbound: bool = False) -> list[str]:
    """Violations as sorted ``where: problem`` strings (order is not part of the contract)."""
    return sorted(str(v) for v in validate_payload(spec_of(qualified), payload, inbound=inbound))


def check_context(qualified: str, payload: Any, *, inbound: bool = True) -> list[str]:
    namespace, _, name = qualified.partition(".")
    return sorted(str(v) for v in validate_context_object(namespace, name, payload,
                                                          inbound=inbound))


def strict_errors(namespace: str, name: str, payload: dict[str, Any], **kw: Any) -> str | None:
    try:
        validate_directive_strict(Directive.create(namespace, name, payload, **kw))
    except OutboundSchemaError as exc:
        return str(exc)
    return None


STREAM: dict[str, Any] = {"beginAtInMilliseconds": 0, "token": "TK-1", "url": "https://m.example/a.mp3",
          "urlPlayable": True}
PLAY: dict[str, Any] = {"audioItem": {"audioItemId": "item-1", "titleText": "Track", "titleSubText1": "Artist",
                      "type": "Provider", "stream": STREAM},
        "playBehavior": "REPLACE_ALL", "source": {"name": "Music"}}


# --------------------------------------------------------------------------- catalogue


def test_message_spec_lookup() -> None:
    spec = spec_of("TextRecognizer.Recognize")
    assert (spec.kind, spec.channel, spec.dialog_request_id) == ("event", None, "required")
    assert spec.qualified_name == "TextRecognizer.Recognize"
    assert [f.path for f in spec.fields] == ["explicit", "speechId", "text"]
    assert message_spec("TextRecognizer", "Nope") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "x"  # type: ignore[misc]


def test_system_exception_is_catalogued() -> None:
    """B-ST-01: System.Exception (only in CIC_API.md) is a directive with code + description."""
    spec = spec_of("System.Exception")
    assert spec.kind == "directive" and spec.dialog_request_id == "not_set"
    assert [f.path for f in spec.fields] == ["code", "description"]


def test_every_schema_compiles_in_both_readings() -> None:
    for key in schema_keys():
        for relaxations in ((), INBOUND_RELAXATIONS):
            for directive in (False, True):
                assert tree(key, directive, relaxations) is not None


def test_catalogue_is_loaded_once() -> None:
    assert catalogue() is catalogue()


# --------------------------------------------------------------------------- conventions


def test_child_required_only_when_parent_present() -> None:
    """Convention 'nesting': initiator is Optional, its Required children bind only inside it."""
    assert check("SpeechRecognizer.Recognize", {"lang": "en"}) == []
    assert check("SpeechRecognizer.Recognize", {"lang": "en", "initiator": {}}) == [
        "payload.initiator.inputSource: required field is missing",
        "payload.initiator.type: required field is missing",
    ]
    initiator = {"type": "WAKEWORD", "inputSource": "SELF",
                 "payload": {"deviceUUID": "d", "wakeWord": {"name": "clova"}}}
    assert check("SpeechRecognizer.Recognize", {"lang": "en", "initiator": initiator}) == [
        "payload.initiator.payload.wakeWord.indices: required field is missing"]


def test_always_fields_of_directives_and_required_fields_of_events() -> None:
    """Events use Required, directives Always; Optional/Conditional never violate by absence."""
    assert check("TextRecognizer.Recognize", {}) == ["payload.text: required field is missing"]
    assert check("SpeechSynthesizer.Speak", {"format": "AUDIO_MPEG"}) == [
        "payload.token: required field is missing", "payload.url: required field is missing"]
    assert check("SpeechSynthesizer.Speak", {"format": "AUDIO_MPEG", "token": "t",
                                             "url": "cid:x"}) == []


def test_split_required_values_pick_the_side() -> None:
    """Shared objects: 'Required/Always' - first half client->server, second half CIC->client."""
    field = FieldSpec(path="x", type="string", required="Required/Optional")
    assert field.is_mandatory(directive=False)
    assert not field.is_mandatory(directive=True)
    assert not FieldSpec("x", "string", "Optional/Conditional").is_mandatory(directive=True)
    assert FieldSpec("x", "string", "Conditional/Always").is_mandatory(directive=True)
    # AudioStreamInfoObject as the client echoes it (event side) and as CIC sends it.
    partial_stream = {k: v for k, v in STREAM.items() if k != "url"}
    assert check("AudioPlayer.StreamRequested", {"audioItemId": "i", "audioStream": partial_stream}
                 ) == ["payload.audioStream.url: required field is missing"]
    play = {**PLAY, "audioItem": {**PLAY["audioItem"], "stream": partial_stream}}
    assert check("AudioPlayer.Play", play) == [
        "payload.audioItem.stream.url: required field is missing"]


def test_array_elements_are_checked_with_indices() -> None:
    """B-AL-05: every listed alert is an AlertInfoObject; paths name the element."""
    payload = {"activeAlerts": [], "allAlerts": [
        {"token": "a", "type": "ALARM", "scheduledTime": "2019-09-01T07:00:00Z"},
        {"type": "NAP", "scheduledTime": "2019-09-01T07:00:00Z"},
        "not an object"]}
    assert check_context("Alerts.AlertsState", payload) == [
        "payload.allAlerts[1].token: required field is missing",
        "payload.allAlerts[1].type: 'NAP' is not one of: ACTIONTIMER, ALARM, REMINDER, TIMER",
        "payload.allAlerts[2]: expected object, got string",
    ]
    assert check_context("Alerts.AlertsState", {"activeAlerts": [], "allAlerts": {}}) == [
        "payload.allAlerts: expected array, got object"]


def test_enum_on_array_of_strings_applies_to_elements() -> None:
    """B-CX-04: DeviceState actions[] must be known DeviceControl directives."""
    payload = {"airplane": {"actions": ["TurnOn", "Explode"], "state": "on"}}
    assert check_context("Device.DeviceState", payload) == [
        "payload.airplane.actions[1]: 'Explode' is not one of: TurnOff, TurnOn"]


def test_nullable() -> None:
    """progressReport.* are nullable ('if not null'); a null elsewhere is a type error."""
    stream = {**STREAM, "progressReport": {"progressReportDelayInMilliseconds": None,
                                           "progressReportIntervalInMilliseconds": 1000}}
    assert check("AudioPlayer.Play", {**PLAY, "audioItem": {**PLAY["audioItem"],
                                                             "stream": stream}}) == []
    assert check("TextRecognizer.Recognize", {"text": None}) == [
        "payload.text: expected string, got null"]


def test_integer_number_and_boolean_are_distinct() -> None:
    """bool is not a number; integer accepts integral floats (JSON has one number type)."""
    base = {"expectSpeechId": "e", "explicit": True}
    expect = "SpeechRecognizer.ExpectSpeech"
    assert check(expect, {**base, "timeoutInMilliseconds": 5000}) == []
    assert check(expect, {**base, "timeoutInMilliseconds": 5000.0}) == []
    assert check(expect, {**base, "timeoutInMilliseconds": 5000.5}) == [
        "payload.timeoutInMilliseconds: expected integer, got number"]
    assert check(expect, {**base, "timeoutInMilliseconds": True}) == [
        "payload.timeoutInMilliseconds: expected integer, got boolean"]
    assert check(expect, {**base, "explicit": 1, "timeoutInMilliseconds": 1}) == [
        "payload.explicit: expected boolean, got number"]
    assert check_context("Speaker.VolumeState", {"volume": False, "muted": False}) == [
        "payload.volume: expected number, got boolean"]
    assert check_context("Speaker.VolumeState", {"volume": 2.5, "muted": False}) == []


def test_max_bytes_counts_utf8() -> None:
    """Speak token/url: at most 2048 bytes - UTF-8 bytes, not characters."""
    ok = {"format": "AUDIO_MPEG", "url": "cid:x"}
    assert check("SpeechSynthesizer.Speak", {**ok, "token": "a" * 2048}) == []
    assert check("SpeechSynthesizer.Speak", {**ok, "token": "é" * 1024}) == []
    too_long = ["payload.token: longer than 2048 bytes in UTF-8"]
    assert check("SpeechSynthesizer.Speak", {**ok, "token": "a" * 2049}) == too_long
    assert check("SpeechSynthesizer.Speak", {**ok, "token": "é" * 1025}) == too_long
    # json.loads yields lone surrogates; they must not crash the check.
    assert check("SpeechSynthesizer.Speak", {**ok, "token": "\ud800" * 1000}) == too_long


@pytest.mark.parametrize("value", [
    "2019-09-01T07:00:00Z", "2019-08-30T18:30:00+09:00", "2019-08-30T18:30:00.125-05:30",
    "2016-12-31T23:59:60Z",
])
def test_date_time_accepts_rfc3339(value: str) -> None:
    payload = {"token": "t", "type": "ALARM", "scheduledTime": value}
    assert check("Alerts.SetAlert", payload) == []


@pytest.mark.parametrize("value", [
    "2019-09-01T07:00:00", "2019-09-01", "2019-13-01T07:00:00Z", "2019-09-01T24:00:00Z",
    "2019-09-01T07:00:00+0900", "yesterday", "",
])
def test_date_time_rejects_the_rest(value: str) -> None:
    payload = {"token": "t", "type": "ALARM", "scheduledTime": value}
    assert check("Alerts.SetAlert", payload) == [
        "payload.scheduledTime: not an RFC 3339 date-time"]


def test_pattern_and_bounds() -> None:
    """initiator.inputSource is SELF or CUSTOM_<id>; wake-word confidence is 0..1."""
    def recognize(source: str, confidence: float) -> dict[str, Any]:
        return {"lang": "ko", "initiator": {"type": "TAP", "inputSource": source, "payload": {
            "deviceUUID": "d", "wakeWord": {"confidence": confidence, "indices": {
                "startIndexInSamples": 0, "endIndexInSamples": 4800}}}}}

    assert check("SpeechRecognizer.Recognize", recognize("CUSTOM_remote", 0.5)) == []
    assert check("SpeechRecognizer.Recognize", recognize("REMOTE", 1.5)) == [
        "payload.initiator.inputSource: does not match ^(SELF|CUSTOM_.+)$",
        "payload.initiator.payload.wakeWord.confidence: above the maximum 1",
    ]
    assert check_context("Device.DeviceState", {"battery": {
        "actions": [], "charging": True, "value": -1}}) == [
        "payload.battery.value: below the minimum 0"]


def test_values_type() -> None:
    """Settings configuration: an object whose every value is a string (B-SE)."""
    assert check("Settings.Update", {"configuration": {"wakeword": "clova"}}) == []
    assert check("Settings.Update", {"configuration": {"wakeword": 1}}) == [
        "payload.configuration.wakeword: expected string, got number"]


def test_refs_resolve_to_shared_context_and_message_payloads() -> None:
    """ref/items_ref: AudioStreamInfoObject, Device.DeviceState, Alerts.SetAlert#payload."""
    assert check("AudioPlayer.Play", {**PLAY, "audioItem": {**PLAY["audioItem"],
                                                             "stream": {**STREAM, "url": 5}}}
                 ) == ["payload.audioItem.stream.url: expected string, got number"]
    assert check("Alerts.SynchronizeAlert", {"allAlerts": [{"token": "t", "type": "ALARM"}]}) == [
        "payload.allAlerts[0].scheduledTime: required field is missing"]
    sync = {"deviceId": "d", "deviceState": {"power": {"actions": ["TurnOn"], "state": "busy"}}}
    assert check("DeviceControl.SynchronizeState", sync) == [
        "payload.deviceState.power.state: 'busy' is not one of: active, idle"]


def test_partial_ok() -> None:
    """StreamDeliver.audioStream may be partial: it is merged into the Play stream (#16)."""
    partial = {"audioItemId": "item-1", "audioStream": {"url": "https://m.example/b.mp3"}}
    assert check("AudioPlayer.StreamDeliver", partial) == []
    assert check("AudioPlayer.StreamDeliver", {"audioItemId": "item-1"}) == [
        "payload.audioStream: required field is missing"]
    assert check("AudioPlayer.StreamDeliver", {"audioItemId": "i", "audioStream": {"url": 1}}
                 ) == ["payload.audioStream.url: expected string, got number"]


def test_unknown_keys_are_allowed_and_kept() -> None:
    """B-UN-02: undocumented keys (e.g. audioItem.episodeId) are never a violation."""
    play = {**PLAY, "extra": [1], "audioItem": {**PLAY["audioItem"], "episodeId": 7}}
    assert check("AudioPlayer.Play", play) == []
    event = parse_event_json({"context": [], "event": {
        "header": {"namespace": "TextRecognizer", "name": "Recognize", "messageId": "m",
                   "dialogRequestId": "d"},
        "payload": {"text": "hi", "mood": "good"}}})
    assert event.violations == [] and event.payload["mood"] == "good"


def test_payload_must_be_an_object() -> None:
    """B-EV-05: payload is an object ({} when empty)."""
    assert check("Clova.Hello", {}) == []
    assert check("Clova.Hello", []) == ["payload: expected object, got array"]


def test_payload_variants() -> None:
    """B-BT-02: BtConnect is {}, {role} or {address, connected, name, role}."""
    assert check("DeviceControl.BtConnect", {}) == []
    assert check("DeviceControl.BtConnect", {"role": "sink", "other": 1}) == []
    full = {"address": "aa", "connected": False, "name": "phone", "role": "source"}
    assert check("DeviceControl.BtConnect", full) == []
    assert check("DeviceControl.BtConnect", {"address": "aa"}) == [
        "payload: keys [address] match no variant: [] | [role] | [address, connected, name, role]"]


# --------------------------------------------------------------------------- templates


def _template(**fields: Any) -> dict[str, Any]:
    return {"failureMessage": {"type": "string", "value": "cannot show"},
            "meta": {"version": {"type": "string", "value": "v0.1"}}, **fields}


def test_render_template_is_validated_by_its_type() -> None:
    ok = _template(type="Text", mainText={"type": "string", "value": "hi"})
    assert strict_errors("Clova", "RenderTemplate", ok) is None
    assert check("Clova.RenderTemplate", _template(type="Hologram")) == [
        "payload.type: unknown template type 'Hologram'"]
    assert check("Clova.RenderTemplate", _template()) == [
        "payload.type: template type is missing or not a string"]


def test_template_value_objects() -> None:
    """Value objects {type, value}: type from the object kind, value typed, value_enum."""
    bad = _template(type="Reminder", status={"type": "string", "value": "LATER"},
                    scheduledTime={"type": "date", "value": "2019-09-01"},
                    label={"value": "x"}, token={"type": "string", "value": 5})
    assert check("Clova.RenderTemplate", bad) == [
        "payload.label.type: required field is missing",
        "payload.scheduledTime.type: 'date' is not one of: datetime",
        "payload.status.value: 'LATER' is not one of: TODO, DONE",
        "payload.token.value: expected string, got number",
    ]
    either = _template(type="Text", highlightText={"type": "number", "value": "1,200"})
    assert check("Clova.RenderTemplate", either) == []
    weather = _template(type="TodayWeather", nowTemperature={"type": "temperature-c",
                                                              "value": 21})
    assert check("Clova.RenderTemplate", weather) == []


# --------------------------------------------------------------------------- inspect_event


def _event(namespace: str, name: str, payload: dict[str, Any], *,
           context: list[ContextObject] | None = None, dialog: str | None = None) -> Event:
    return Event.create(namespace, name, payload, dialog_request_id=dialog, context=context)


def test_inspect_event_clean() -> None:
    event = _event("TextRecognizer", "Recognize", {"text": "hi"}, dialog="d-1", context=[
        ContextObject("Speaker", "VolumeState", {"volume": 3, "muted": False}),
        ContextObject("AudioPlayer", "PlaybackState", {"playerActivity": "IDLE",
                                                       "repeatMode": "NONE"}),
    ])
    assert inspect_event(event) == []


def test_inspect_event_unknown_and_directive_names() -> None:
    assert inspect_event(_event("TextRecognizer", "Shout", {})) == [
        Violation("event.header", "unknown event TextRecognizer.Shout")]
    assert inspect_event(_event("SpeechSynthesizer", "Speak", {})) == [
        Violation("event.header", "SpeechSynthesizer.Speak is a directive, not an event")]


def test_inspect_event_payload_and_dialogue_id() -> None:
    """B-DI-01: a Recognize carries a client-made dialogRequestId."""
    assert sorted(map(str, inspect_event(_event("TextRecognizer", "Recognize", {})))) == [
        "event.header.dialogRequestId: missing on a Recognize event",
        "payload.text: required field is missing",
    ]


def test_inspect_event_context_objects() -> None:
    """B-CX-01: context objects are checked one by one; unknown ones are reported."""
    event = _event("Alerts", "AlertStarted", {"token": "a", "type": "ALARM"}, context=[
        ContextObject("Speaker", "VolumeState", {"volume": -1}),
        ContextObject("Clova", "Mood", {}),
    ])
    assert sorted(map(str, inspect_event(event))) == [
        "context[Clova.Mood]: unknown context object Clova.Mood",
        "context[Speaker.VolumeState].payload.muted: required field is missing",
        "context[Speaker.VolumeState].payload.volume: below the minimum 0",
    ]


def test_parse_event_json_records_violations() -> None:
    """B-EV-05 via the real entry point, including the PlayerState alias (#12)."""
    event = parse_event_json({
        "context": [{"header": {"namespace": "AudioPlayer", "name": "PlayerState"},
                     "payload": {"playerActivity": "PAUSE", "repeatMode": "NONE"}}],
        "event": {"header": {"namespace": "Alerts", "name": "AlertStopped", "messageId": "m"},
                  "payload": {"token": "a", "type": "SNOOZE"}}})
    assert [str(v) for v in event.violations] == [
        "payload.type: 'SNOOZE' is not one of: ACTIONTIMER, ALARM, REMINDER, TIMER"]


def test_inspect_event_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(schema, "_walk", broken)
    assert inspect_event(_event("TextRecognizer", "Recognize", {"text": "x"}, dialog="d")) == [
        Violation("event", "could not be inspected (validator error; see log)")]


@pytest.mark.parametrize("payload", [
    {"text": {"deep": [1, {"x": None}]}}, {"text": ["a"]}, {"text": 1e308}, {1: 2},
    {"text": "x", "explicit": "yes", "speechId": None},
])
def test_inspect_event_tolerates_odd_payloads(payload: dict[Any, Any]) -> None:
    violations = inspect_event(_event("TextRecognizer", "Recognize", payload, dialog="d"))
    assert all(isinstance(v, Violation) and v.where != "event" for v in violations)


# --------------------------------------------------------------------------- strict outbound


def test_strict_rejects_unknown_and_event_names() -> None:
    """Strict outbound: only catalogued directives may be emitted (B-UN-01 on the far side)."""
    assert strict_errors("Clova", "Dance", {}) == "Clova.Dance: unknown directive"
    assert strict_errors("TextRecognizer", "Recognize", {"text": "x"}) == (
        "TextRecognizer.Recognize: an event, not a directive")


def test_strict_lists_every_violation() -> None:
    message = strict_errors("AudioPlayer", "Play", {"playBehavior": "SHUFFLE"})
    assert message == (
        "AudioPlayer.Play fails its schema: payload.playBehavior: 'SHUFFLE' is not one of: "
        "REPLACE_ALL, ENQUEUE; payload.audioItem: required field is missing; "
        "payload.source: required field is missing")
    assert strict_errors("AudioPlayer", "Play", PLAY, dialog_request_id="d") is None


def test_strict_system_exception_and_dialogue_ids() -> None:
    """B-ST-01: code + description, no dialogRequestId; B-DC-02: Hello has none either."""
    assert strict_errors("System", "Exception", {"code": 400, "description": "bad"}) is None
    assert strict_errors("System", "Exception", {"code": "400"}) == (
        "System.Exception fails its schema: payload.code: expected number, got string; "
        "payload.description: required field is missing")
    assert strict_errors("System", "Exception", {"code": 500, "description": "x"},
                         dialog_request_id="d") == (
        "System.Exception fails its schema: header.dialogRequestId: must not be set")
    assert strict_errors("Clova", "Hello", {}, dialog_request_id="d") is not None
    # "set"/"conditional" rules depend on what the directive answers: not enforced here.
    assert strict_errors("Clova", "RenderText", {"text": "hi"}) is None


def test_strict_ignores_inbound_relaxations() -> None:
    """Relaxations are for what we accept, never for what we emit (e.g. #16)."""
    play = {**PLAY, "audioItem": {k: v for k, v in PLAY["audioItem"].items()
                                  if k != "titleText"}}
    assert strict_errors("AudioPlayer", "Play", play) == (
        "AudioPlayer.Play fails its schema: payload.audioItem.titleText: required field is missing")


# --------------------------------------------------------------------------- README ambiguities

# Reference-doc examples that the spec pack records as wrong (doc_anomalies), rebuilt here:
# (ambiguity, qualified name, payload, strict violations, inbound violations). The strict
# reading keeps flagging them; the inbound reading accepts exactly what the README says.
DOC_EXAMPLE_ANOMALIES: list[tuple[int, str, dict[str, Any], list[str], list[str]]] = [
    (24, "SpeechRecognizer.Recognize", {"format": "AUDIO_L16_RATE_16000_CHANNELS_1",
                                        "speechId": "s-1", "explicit": True},
     ["payload.lang: required field is missing"], []),
    (26, "AudioPlayer.ReportPlaybackState", {"playerActivity": "PAUSE", "repeatMode": "NONE"},
     ["payload.playerActivity: 'PAUSE' is not one of: IDLE, PLAYING, PAUSED, STOPPED"], []),
    (20, "PlaybackController.PauseCommandIssued", {"source": {"namespace": "MediaPlayer"}},
     ["payload.source.namespace: 'MediaPlayer' is not one of: AudioPlayer"], []),
    (21, "DeviceControl.ActionExecuted", {"command": "BtPlay", "target": "energysave"},
     [("payload.command: 'BtPlay' is not one of: BtConnect, BtConnectByPINCode, BtDisconnect, "
       "BtStartPairing, BtStopPairing, Decrease, Increase, Open, SetValue, TurnOn, TurnOff"),
      ("payload.target: 'energysave' is not one of: airplane, app, bluetooth, cellular, "
       "channel, flashlight, gps, powersave, screenbrightness, soundmode, volume, wifi")], []),
    (29, "Alerts.AlertStopped", {"token": "a", "type": "TIMER",
                                 "scheduledTime": "2019-08-30T18:30:00+09:00"}, [], []),
    (29, "Alerts.SetAlert", {"token": "a", "type": "ALARM",
                             "scheduledTime": "2019-08-30 18:30:00+09:00"},
     ["payload.scheduledTime: not an RFC 3339 date-time"], []),
    (14, "Clova.ExpectLogin", {"guideInfo": {"useDefault": "false"}},
     ["payload.guideInfo.useDefault: expected boolean, got string"], []),
    (16, "AudioPlayer.Play", {**PLAY, "audioItem": {
        "audioItemId": "item-42", "type": "Provider", "stream": STREAM,
        "episodeId": 22, "album": "A", "title": "T"}},
     ["payload.audioItem.titleSubText1: required field is missing",
      "payload.audioItem.titleText: required field is missing"], []),
    # #16 does not excuse the stream token the AudioStreamInfoObject example leaves out.
    (16, "AudioPlayer.Play", {**PLAY, "audioItem": {
        **PLAY["audioItem"], "stream": {k: v for k, v in STREAM.items() if k != "token"}}},
     ["payload.audioItem.stream.token: required field is missing"],
     ["payload.audioItem.stream.token: required field is missing"]),
    (16, "AudioPlayer.StreamDeliver", {"audioItemId": "item-42", "audioStream": {
        "token": "TK-1", "url": "https://m.example/real.mp3", "urlPlayable": True}}, [], []),
    (33, "TemplateRuntime.RenderPlayerInfo", {
        "controls": [{"enabled": True, "name": "PLAY_PAUSE", "selected": False, "type": "BUTTON"}],
        "displayType": "single",
        "playableItems": [{"showAdultIcon": False, "titleText": "Track", "titleSubText1": "Artist",
                           "token": "pi-1",
                           "controls": [{"enabled": True, "name": "LIKE_DISLIKE",
                                         "selected": False, "type": "BUTTON"}],
                           "lyrics": [{"format": "LRC", "data": None, "url": None}]}]},
     [("payload.playableItems[0].controls[0].name: 'LIKE_DISLIKE' is not one of: "
       "BACKWARD_15S, BACKWARD_30S, BACKWARD_60S, FORWARD_15S, FORWARD_30S, FORWARD_60S, NEXT, "
       "PLAY_PAUSE, PREVIOUS, PROGRESS_BAR, REPEAT, SUBSCRIBE_UNSUBSCRIBE")], []),
    (34, "Clova.RenderTemplate", {"type": "Text", "mainText": {"type": "string", "value": "hi"}},
     ["payload.failureMessage: required field is missing",
      "payload.meta: required field is missing"], []),
    (34, "Clova.RenderTemplate", _template(type="Atmosphere", valueOfAtmosphere={
        "type": "number", "value": "23"}),
     ["payload.valueOfAtmosphere.type: 'number' is not one of: string"], []),
    (32, "Clova.RenderTemplate", _template(type="CardList", subType="", cardList=[]), [], []),
]

# Same, for context objects: (ambiguity, context object, payload, strict, inbound).
DOC_CONTEXT_ANOMALIES: list[tuple[int, str, dict[str, Any], list[str], list[str]]] = [
    (25, "Speaker.VolumeState", {"volume": 25, "muted": False},
     ["payload.volume: above the maximum 10"], []),
    (25, "Speaker.VolumeState", {"volume": -1, "muted": False},
     ["payload.volume: below the minimum 0"], ["payload.volume: below the minimum 0"]),
    (26, "AudioPlayer.PlaybackState", {"playerActivity": "PAUSE", "repeatMode": "NONE"},
     ["payload.playerActivity: 'PAUSE' is not one of: IDLE, PLAYING, PAUSED, STOPPED"], []),
    (29, "Clova.Location", {"latitude": "1", "longitude": "2",
                            "refreshedAt": "2019-08-30t10:00:00z"},
     ["payload.refreshedAt: not an RFC 3339 date-time"], []),
    (31, "Device.DeviceState", {"bluetooth": {
        "actions": ["TurnOn"], "state": "on",
        "btlist": [{"address": "aa:bb", "name": "phone", "connected": True}]}},
     ["payload.bluetooth.btlist[0].role: required field is missing",
      "payload.bluetooth.connecting: required field is missing",
      "payload.bluetooth.pairing: required field is missing",
      "payload.bluetooth.scanlist: required field is missing",
      "payload.bluetooth.scanning: required field is missing"], []),
    # #31 tolerates missing members, not wrong ones.
    (31, "Device.DeviceState", {"bluetooth": {"state": "maybe"}},
     ["payload.bluetooth.actions: required field is missing",
      "payload.bluetooth.btlist: required field is missing",
      "payload.bluetooth.connecting: required field is missing",
      "payload.bluetooth.pairing: required field is missing",
      "payload.bluetooth.scanlist: required field is missing",
      "payload.bluetooth.scanning: required field is missing",
      "payload.bluetooth.state: 'maybe' is not one of: off, on"],
     ["payload.bluetooth.state: 'maybe' is not one of: off, on"]),
    (12, "AudioPlayer.PlayerState", {"playerActivity": "IDLE", "repeatMode": "NONE"}, [], []),
]


@pytest.mark.parametrize(("ambiguity", "qualified", "payload", "strict", "inbound"),
                         DOC_EXAMPLE_ANOMALIES,
                         ids=[f"#{c[0]}-{c[1]}" for c in DOC_EXAMPLE_ANOMALIES])
def test_documented_message_anomalies(ambiguity: int, qualified: str, payload: dict[str, Any],
                                      strict: list[str], inbound: list[str]) -> None:
    assert check(qualified, payload) == strict, f"strict reading, ambiguity #{ambiguity}"
    assert check(qualified, payload, inbound=True) == inbound, f"inbound, ambiguity #{ambiguity}"


@pytest.mark.parametrize(("ambiguity", "qualified", "payload", "strict", "inbound"),
                         DOC_CONTEXT_ANOMALIES,
                         ids=[f"#{c[0]}-{c[1]}" for c in DOC_CONTEXT_ANOMALIES])
def test_documented_context_anomalies(ambiguity: int, qualified: str, payload: dict[str, Any],
                                      strict: list[str], inbound: list[str]) -> None:
    assert check_context(qualified, payload, inbound=False) == strict, f"#{ambiguity} strict"
    assert check_context(qualified, payload, inbound=True) == inbound, f"#{ambiguity} inbound"


def test_inbound_events_get_the_relaxations() -> None:
    """#24 (no lang, empty context) through the server's entry point."""
    event = parse_event_json({"context": [], "event": {
        "header": {"namespace": "SpeechRecognizer", "name": "Recognize", "messageId": "m",
                   "dialogRequestId": "d"},
        "payload": {"format": "AUDIO_L16_RATE_16000_CHANNELS_1"}}})
    assert event.violations == []


def test_unknown_context_object() -> None:
    assert check_context("Clova.Mood", {}) == ["header: unknown context object Clova.Mood"]
    assert check_context("Speaker.VolumeState", [1]) == ["payload: expected object, got array"]


# --------------------------------------------------------------------------- speed


def test_validation_is_cheap() -> None:
    """inspect_event runs on every request: a small payload must cost microseconds.

    The bound is loose (shared CI machines); measured during development: about 0.8 us
    for this payload, about 1 us for the whole inspect_event without context.
    """
    spec = spec_of("TextRecognizer.Recognize")
    payload = {"text": "What's the weather?"}
    validate_payload(spec, payload, inbound=True)
    per_call = min(timeit.repeat(lambda: validate_payload(spec, payload, inbound=True),
                                 number=2000, repeat=3)) / 2000
    assert per_call < 50e-6
