"""Tests of the event-request and response-stream readers (B-EV-01, B-MP-05..09, B-AU-02,
B-UN-01). Wire examples are copied from the seed (000_130b86e1d2bed4d1.txt, CIC API
reference, and 003_438cdd4826497a64.txt, sending a Recognize event) with CRLF line ends.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.seed_wire import (
    SEED_003_AUDIO_PART,
    SEED_003_JSON_PART,
    SEED_DOWNCHANNEL_HELLO,
    SEED_ERROR_400,
    SEED_ERROR_CT,
    SEED_REQUEST,
    SEED_REQUEST_CT,
    SEED_RESPONSE,
    SEED_RESPONSE_CT,
)

from opencic.protocol.errors import BadRequest
from opencic.protocol.event_stream import (
    AttachmentReceived,
    AudioChunk,
    AudioEnded,
    DirectiveReceived,
    EventReceived,
    EventRequestItem,
    EventRequestParser,
    MalformedPart,
    ResponseEnded,
    ResponseItem,
    ResponseStreamParser,
)
from opencic.protocol.messages import Attachment, Directive, Event
from opencic.protocol.multipart import MultipartLimits
from opencic.protocol.multipart_writer import MultipartWriter


def without_ellipses(body: bytes) -> bytes:
    """The seed's JSON has '...' placeholder lines (ambiguity #23); drop them."""
    return b"\r\n".join(line for line in body.split(b"\r\n") if line.strip() not in (b"...",))


def recognize_event() -> Event:
    return Event.create(
        "SpeechRecognizer",
        "Recognize",
        {"lang": "ko", "profile": "CLOSE_TALK", "format": "AUDIO_L16_RATE_16000_CHANNELS_1"},
        dialog_request_id="4e4080d6-c440-498a-bb73-ae86c6312806",
    )


def run_request(
    body: bytes | list[bytes], content_type: str, **kwargs: object
) -> list[EventRequestItem]:
    parser = EventRequestParser(content_type, **kwargs)  # type: ignore[arg-type]
    items: list[EventRequestItem] = []
    for chunk in body if isinstance(body, list) else [body]:
        items += parser.feed(chunk)
    return items + parser.close()


def audio_of(items: list[EventRequestItem]) -> bytes:
    return b"".join(i.data for i in items if isinstance(i, AudioChunk))


def run_response(
    body: bytes | list[bytes], content_type: str, **kwargs: object
) -> list[ResponseItem]:
    parser = ResponseStreamParser(content_type, **kwargs)  # type: ignore[arg-type]
    items: list[ResponseItem] = []
    for chunk in body if isinstance(body, list) else [body]:
        items += parser.feed(chunk)
    return items + parser.close()


# ---------------------------------------------------------------- EventRequestParser


def test_seed_request_example_b_ev_01() -> None:
    """Seed 'Sending event messages': the Recognize JSON then an audio part."""
    items = run_request(without_ellipses(SEED_REQUEST), SEED_REQUEST_CT)
    assert [type(i) for i in items] == [EventReceived, AudioChunk, AudioEnded]
    event = items[0].event  # type: ignore[union-attr]
    assert event.qualified_name == "SpeechRecognizer.Recognize"
    assert event.header.dialog_request_id == "4e4080d6-c440-498a-bb73-ae86c6312806"
    assert [c.qualified_name for c in event.context] == [
        "Alerts.AlertsState",
        "Speaker.VolumeState",
    ]
    assert audio_of(items) == b"[[ binary audio attachment ]]"


def test_seed_003_event_is_handed_over_before_the_audio_arrives_b_au_02() -> None:
    """Seed 003: once the JSON part and its delimiter are sent, the event is available."""
    parser = EventRequestParser("multipart/form-data; boundary=Boundary-Text")
    first = parser.feed(SEED_003_JSON_PART)
    assert [type(i) for i in first] == [EventReceived]
    assert first[0].event.payload == {"profile": "CLOSE_TALK"}  # type: ignore[union-attr]
    rest = parser.feed(SEED_003_AUDIO_PART) + parser.close()
    assert rest == [AudioChunk(b"[[ binary audio attachment ]]"), AudioEnded()]


def test_round_trip_with_200ms_audio_parts_b_au_02() -> None:
    w = MultipartWriter(subtype="form-data")
    event = recognize_event()
    frames = [bytes([n]) * 6400 for n in range(10)]
    body = w.event_part(event.to_json()) + b"".join(w.audio_part(f) for f in frames) + w.close()
    items = run_request(body, w.content_type)
    assert isinstance(items[0], EventReceived) and items[0].event.header == event.header
    assert audio_of(items) == b"".join(frames)
    assert items[-1] == AudioEnded() and sum(isinstance(i, AudioEnded) for i in items) == 1


def test_audio_chunks_name_their_part_b_au_02() -> None:
    """Each chunk says which audio part it belongs to, so parts can be checked one by
    one (whole 16-bit samples, B-AU-01), whatever the DATA frame boundaries."""
    w = MultipartWriter(subtype="form-data")
    frames = [bytes([n]) * 6400 for n in range(3)]
    body = w.event_part(recognize_event().to_json()) + b"".join(w.audio_part(f) for f in frames)
    body += w.close()
    items = run_request([body[i : i + 1000] for i in range(0, len(body), 1000)], w.content_type)
    sizes: dict[int, int] = {}
    for item in items:
        if isinstance(item, AudioChunk):
            sizes[item.part] = sizes.get(item.part, 0) + len(item.data)
    assert sizes == {1: 6400, 2: 6400, 3: 6400}


def test_audio_is_streamed_not_buffered_b_au_02() -> None:
    """1 MB of audio fed in 6,400-byte pieces comes out as it arrives."""
    w = MultipartWriter(subtype="form-data")
    parser = EventRequestParser(w.content_type)
    assert [type(i) for i in parser.feed(w.event_part(recognize_event().to_json()))] == [
        EventReceived
    ]
    parser.feed(w.part(b"", content_type="application/octet-stream", name="audio")[: -2 - 2 - 48])
    audio = bytes(range(256)) * 4096
    out = 0
    for offset in range(0, len(audio), 6400):
        chunk = audio[offset : offset + 6400]
        out += len(audio_of(parser.feed(chunk)))
        assert offset + len(chunk) - out <= 2 + 2 + 48  # at most a delimiter prefix is held
    tail = parser.feed(b"\r\n--" + w.boundary.encode() + b"--\r\n") + parser.close()
    assert out + len(audio_of(tail)) == len(audio) and tail[-1] == AudioEnded()
    assert parser.audio_bytes == len(audio)


def test_json_part_without_content_type_ambiguity_39() -> None:
    body = b"--b\r\n\r\n" + json.dumps(recognize_event().to_json()).encode() + b"\r\n--b--\r\n"
    items = run_request(body, "multipart/form-data; boundary=b")
    assert [type(i) for i in items] == [EventReceived, AudioEnded]


def test_send_event_md_close_then_audio_only_when_lenient_ambiguity_6() -> None:
    body = (
        b"--b\r\nContent-Type: application/json\r\n\r\n"
        + json.dumps(recognize_event().to_json()).encode()
        + b"\r\n--b--\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\npcm\r\n--b--\r\n"
    )
    with pytest.raises(BadRequest, match="follows the close delimiter"):
        run_request(body, "multipart/form-data; boundary=b")
    items = run_request(body, "multipart/form-data; boundary=b", lenient_close=True)
    assert [type(i) for i in items] == [EventReceived, AudioChunk, AudioEnded]


def _json_part(doc: object, content_type: str = "application/json") -> bytes:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return b"--b\r\nContent-Type: " + content_type.encode() + b"\r\n\r\n" + data


EVENT_JSON = recognize_event().to_json()


@pytest.mark.parametrize(
    ("content_type", "body", "match"),
    [
        (None, b"", "Content-Type is missing"),
        ("application/json", b"{}", "not multipart"),
        ("multipart/form-data", b"", "no boundary"),
        ("multipart/form-data; boundary=b", b"--b--\r\n", "no parts"),
        ("multipart/form-data; boundary=b", b"", "missing opening delimiter"),
        (
            "multipart/form-data; boundary=b",
            _json_part(b"pcm", "application/octet-stream") + b"\r\n--b--",
            "first part must be the JSON event",
        ),
        (
            "multipart/form-data; boundary=b",
            _json_part(EVENT_JSON) + b"\r\n" + _json_part(EVENT_JSON) + b"\r\n--b--",
            "second JSON part",
        ),
        ("multipart/form-data; boundary=b", _json_part(b"{nope") + b"\r\n--b--", "not valid JSON"),
        ("multipart/form-data; boundary=b", _json_part(b"\xff{}") + b"\r\n--b--", "JSON"),
        (
            "multipart/form-data; boundary=b",
            _json_part({"context": []}) + b"\r\n--b--",
            "no 'event'",
        ),
        ("multipart/form-data; boundary=b", _json_part(EVENT_JSON), "truncated"),
        ("multipart/form-data; boundary=b", _json_part(EVENT_JSON) + b"\r\n--b", "truncated"),
    ],
)
def test_bad_event_requests_are_400_b_ev_04(
    content_type: str | None, body: bytes, match: str
) -> None:
    """B-EV-04: an unparseable or invalid request is BadRequest with a description."""
    with pytest.raises(BadRequest, match=match) as info:
        run_request(body, content_type)  # type: ignore[arg-type]
    assert info.value.status == 400


def test_json_part_size_limit_b_ev_04() -> None:
    body = _json_part(EVENT_JSON) + b"\r\n--b--\r\n"
    size = len(json.dumps(EVENT_JSON))
    assert isinstance(
        run_request(body, "multipart/form-data; boundary=b", max_json_bytes=size)[0], EventReceived
    )
    with pytest.raises(BadRequest, match=f"^JSON part exceeds {size - 1} bytes$"):
        run_request(body, "multipart/form-data; boundary=b", max_json_bytes=size - 1)
    # Also when the JSON trickles in: the limit holds before the part ends.
    parser = EventRequestParser("multipart/form-data; boundary=b", max_json_bytes=100)
    parser.feed(_json_part(b"[" + b"1," * 40))
    with pytest.raises(BadRequest, match="exceeds 100 bytes"):
        parser.feed(b"1," * 40)


def test_too_many_audio_parts() -> None:
    w = MultipartWriter(subtype="form-data")
    body = w.event_part(EVENT_JSON) + b"".join(w.audio_part(b"x") for _ in range(5)) + w.close()
    with pytest.raises(BadRequest, match="more than 4 parts"):
        run_request(body, w.content_type, limits=MultipartLimits(max_parts=4))


def test_errors_after_items_come_with_the_next_call() -> None:
    """The event is not lost when a later part of the same chunk is bad."""
    parser = EventRequestParser("multipart/form-data; boundary=b")
    items = parser.feed(_json_part(EVENT_JSON) + b"\r\n" + _json_part(EVENT_JSON) + b"\r\n--b--")
    assert [type(i) for i in items] == [EventReceived]
    with pytest.raises(BadRequest, match="second JSON part"):
        parser.close()
    with pytest.raises(BadRequest, match="second JSON part"):
        parser.feed(b"")


@settings(max_examples=150, deadline=None)
@given(
    frames=st.lists(st.binary(max_size=300), max_size=6),
    cuts=st.lists(st.integers(0, 10**5), max_size=25),
)
def test_request_split_anywhere_b_au_02(frames: list[bytes], cuts: list[int]) -> None:
    w = MultipartWriter(subtype="form-data")
    event = recognize_event()
    body = w.event_part(event.to_json()) + b"".join(w.audio_part(f) for f in frames) + w.close()
    points = sorted({c % (len(body) + 1) for c in cuts})
    bounds = [0, *points, len(body)]
    items = run_request([body[a:b] for a, b in itertools.pairwise(bounds)], w.content_type)
    assert isinstance(items[0], EventReceived) and items[0].event.header == event.header
    assert audio_of(items) == b"".join(frames)
    assert items[-1] == AudioEnded()


# ---------------------------------------------------------------- ResponseStreamParser


def test_seed_response_example_b_mp_08_b_mp_09() -> None:
    """Seed event response: two directives and the Speak attachment (bare Content-ID)."""
    items = run_response(SEED_RESPONSE, SEED_RESPONSE_CT)
    assert [type(i) for i in items] == [
        DirectiveReceived,
        AttachmentReceived,
        DirectiveReceived,
        ResponseEnded,
    ]
    speak = items[0].directive  # type: ignore[union-attr]
    attachment = items[1].attachment  # type: ignore[union-attr]
    assert speak.qualified_name == "SpeechSynthesizer.Speak"
    assert speak.payload["url"] == attachment.cid_url
    assert attachment.content_type == "application/octet-stream"
    assert items[2].directive.payload == {"text": "Nice to meet you."}  # type: ignore[union-attr]


def test_seed_error_response_b_st_01() -> None:
    (directive, end) = run_response(SEED_ERROR_400, SEED_ERROR_CT)
    assert isinstance(directive, DirectiveReceived) and isinstance(end, ResponseEnded)
    assert directive.directive.qualified_name == "System.Exception"
    assert directive.directive.payload["code"] == 400


def test_seed_downchannel_hello_is_delivered_at_once_b_dc_02() -> None:
    parser = ResponseStreamParser(SEED_RESPONSE_CT)
    (hello,) = parser.feed(SEED_DOWNCHANNEL_HELLO)
    assert isinstance(hello, DirectiveReceived)
    assert hello.directive.qualified_name == "Clova.Hello"
    with pytest.raises(BadRequest, match="truncated"):
        parser.close()  # the stream was cut before its close delimiter


def test_downchannel_pushes_are_delivered_one_by_one() -> None:
    """design.md pitfall: each pushed directive is usable before the next one exists."""
    w = MultipartWriter()
    parser = ResponseStreamParser(w.content_type)
    for n in range(3):
        d = Directive.create("Clova", "RenderText", {"text": str(n)})
        (item,) = parser.feed(w.directive_part(d))
        assert isinstance(item, DirectiveReceived) and item.directive.payload == {"text": str(n)}
    assert parser.feed(w.close()) == []
    assert parser.close() == [ResponseEnded()]


def test_writer_round_trip_with_attachment_b_mp_07() -> None:
    w = MultipartWriter()
    att = Attachment("9d5d37a3-0e70-41a6-a671-e1a40c7ea4d8", b"\xff\xfbmp3" * 100, "audio/mpeg")
    speak = Directive.create("SpeechSynthesizer", "Speak", {"url": att.cid_url})
    body = w.attachment_part(att) + w.directive_part(speak) + w.close()  # attachment first
    items = run_response([body[i : i + 7] for i in range(0, len(body), 7)], w.content_type)
    assert items == [AttachmentReceived(att), DirectiveReceived(speak), ResponseEnded()]


def test_bad_parts_are_skipped_and_the_rest_delivered_b_un_01() -> None:
    w = MultipartWriter()
    good = Directive.create("Clova", "RenderText", {"text": "ok"})
    body = (
        w.part(b"{not json", content_type="application/json", name="a")
        + w.part(b'{"no":"directive"}', content_type="application/json", name="b")
        + w.part(b"\xff\xfe\x00", content_type="application/json", name="c")
        + w.part(b"[" * 100_000 + b"]" * 100_000, content_type="application/json", name="d")
        + w.part(b"binary", content_type="application/octet-stream", name="e")  # no Content-ID
        + w.part(b'{"directive":{"header":{"namespace":"X"}}}', content_type="application/json")
        + w.directive_part(good)
        + w.close()
    )
    items = run_response(body, w.content_type)
    malformed = [i for i in items if isinstance(i, MalformedPart)]
    assert [m.index for m in malformed] == [0, 1, 2, 3, 4, 5]
    assert all(m.description for m in malformed)
    assert items[-2:] == [DirectiveReceived(good), ResponseEnded()]


def test_response_part_without_content_type_is_json_when_it_parses_ambiguity_39() -> None:
    d = Directive.create("Clova", "Hello")
    body = (
        b"--b\r\nX: 1\r\n\r\nignored\r\n--b\r\n\r\n"
        + json.dumps(d.to_json()).encode()
        + b"\r\n--b--"
    )
    items = run_response(body, "multipart/related; boundary=b")
    assert isinstance(items[0], MalformedPart)  # index 0, no Content-Type, not JSON
    assert items[1:] == [DirectiveReceived(d), ResponseEnded()]


def test_response_size_limits_skip_parts() -> None:
    w = MultipartWriter()
    d = Directive.create("Clova", "RenderText", {"text": "x" * 500})
    body = (
        w.directive_part(d)
        + w.attachment_part(Attachment("id", b"a" * 1000))
        + w.directive_part(Directive.create("Clova", "Hello"))
        + w.close()
    )
    items = run_response(body, w.content_type, max_json_bytes=200, max_attachment_bytes=999)
    assert [type(i) for i in items] == [
        MalformedPart,
        MalformedPart,
        DirectiveReceived,
        ResponseEnded,
    ]
    assert "exceeds 200 bytes" in items[0].description  # type: ignore[union-attr]
    assert "exceeds 999 bytes" in items[1].description  # type: ignore[union-attr]


def test_downchannel_has_no_part_count_limit() -> None:
    w = MultipartWriter()
    parser = ResponseStreamParser(w.content_type)
    part = w.directive_part(Directive.create("Clova", "Hello"))
    rest = b"".join(w.directive_part(Directive.create("Clova", "Hello")) for _ in range(10_050))
    items = parser.feed(part + rest)
    assert len(items) == 10_051 and all(isinstance(i, DirectiveReceived) for i in items)


def test_response_multipart_errors_raise() -> None:
    with pytest.raises(BadRequest, match="not multipart"):
        ResponseStreamParser("application/json")
    parser = ResponseStreamParser("multipart/related; boundary=b")
    with pytest.raises(BadRequest, match="malformed header line"):
        parser.feed(b"--b\r\nno colon\r\n\r\n")
