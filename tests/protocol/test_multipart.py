"""Tests of the sans-I/O multipart codec (B-MP-01..09, ambiguities #1-#6 and #39).

Wire examples are copied from the seed (CIC_API.md excerpt, 000_130b86e1d2bed4d1.txt)
with CRLF line ends, as they travel on the wire.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.seed_wire import (
    SEED_DOWNCHANNEL_HELLO,
    SEED_ERROR_400,
    SEED_ERROR_CT,
    SEED_REQUEST,
    SEED_REQUEST_CT,
    SEED_RESPONSE,
    SEED_RESPONSE_CT,
)

from opencic.protocol.errors import BadRequest
from opencic.protocol.messages import Attachment, Directive, system_exception
from opencic.protocol.multipart import (
    BodyEnded,
    MultipartEvent,
    MultipartLimits,
    MultipartParser,
    PartData,
    PartEnded,
    PartStarted,
    collect_parts,
    parse_content_type,
)
from opencic.protocol.multipart_writer import MultipartWriter

B = "simple-boundary"


# ---------------------------------------------------------------- helpers


def feed_all(
    parser: MultipartParser, chunks: list[bytes], *, close: bool = True
) -> list[MultipartEvent]:
    events: list[MultipartEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    if close:
        events += parser.close()
    return events


def parse(body: bytes, boundary: str = B, **kwargs: object) -> list[MultipartEvent]:
    return feed_all(MultipartParser(boundary, **kwargs), [body])  # type: ignore[arg-type]


def merged(events: list[MultipartEvent]) -> list[MultipartEvent]:
    """Consecutive PartData merged: the canonical form, independent of input splits."""
    out: list[MultipartEvent] = []
    for ev in events:
        if isinstance(ev, PartData) and out and isinstance(out[-1], PartData):
            out[-1] = PartData(out[-1].data + ev.data)
        else:
            out.append(ev)
    return out


def parts(events: list[MultipartEvent]) -> list[tuple[dict[str, str], bytes]]:
    out: list[tuple[dict[str, str], bytes]] = []
    current: dict[str, str] | None = None
    body = b""
    for ev in events:
        if isinstance(ev, PartStarted):
            current, body = ev.headers, b""
        elif isinstance(ev, PartData):
            body += ev.data
        elif isinstance(ev, PartEnded):
            assert current is not None
            out.append((current, body))
            current = None
    return out


def raw(*lines: str) -> bytes:
    return "\r\n".join(lines).encode()


def expect_bad_request(body: bytes | list[bytes], match: str, **kwargs: object) -> BadRequest:
    chunks = body if isinstance(body, list) else [body]
    parser = MultipartParser(kwargs.pop("boundary", B), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(BadRequest, match=match) as info:
        feed_all(parser, chunks)
    assert info.value.status == 400 and info.value.description
    return info.value


# ---------------------------------------------------------------- parse_content_type


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("multipart/form-data; boundary=abc", ("multipart/form-data", "abc")),
        ("multipart/related; boundary=abc", ("multipart/related", "abc")),
        ("multipart/mixed; boundary=abc", ("multipart/mixed", "abc")),
        ('multipart/related; boundary="a b:c"', ("multipart/related", "a b:c")),
        ("multipart/related; boundary=abc;", ("multipart/related", "abc")),
        ("  Multipart/Related ;  BOUNDARY = abc ;  ", ("multipart/related", "abc")),
        ('multipart/related; type="application/json"; boundary=abc', ("multipart/related", "abc")),
        ("multipart/related; charset=utf-8; Boundary=abc", ("multipart/related", "abc")),
        ("multipart/form-data; boundary=" + "x" * 70, ("multipart/form-data", "x" * 70)),
        (SEED_RESPONSE_CT, ("multipart/related", SEED_RESPONSE_CT.split("=")[1][:-1])),
    ],
)
def test_parse_content_type_accepts_any_multipart(value: str, expected: tuple[str, str]) -> None:
    """B-MP-01/B-MP-03, ambiguities #1 and #2: any multipart/*, quoted, trailing ';'."""
    assert parse_content_type(value) == expected


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (None, "missing"),
        ("   ", "missing"),
        ("application/json", "not multipart"),
        ("multipart/", "not multipart"),
        ("text/plain; boundary=abc", "not multipart"),
        ("multipart/related", "no boundary"),
        ("multipart/related; boundary=", "no boundary"),
        ('multipart/related; boundary=""', "no boundary"),
        ("multipart/related; boundary=" + "x" * 71, "1-70"),
        ("multipart/related; boundary=a@b", "1-70"),
        ('multipart/related; boundary="ends-in-space "', "1-70"),
    ],
)
def test_parse_content_type_rejects(value: str | None, match: str) -> None:
    """B-MP-01: no Content-Type, not multipart, or no/invalid boundary -> 400."""
    with pytest.raises(BadRequest, match=match):
        parse_content_type(value)


# ---------------------------------------------------------------- writer


def test_writer_frames_each_part_completely_b_mp_02() -> None:
    """design.md pitfall: the delimiter follows each part at once; close() adds '--'."""
    w = MultipartWriter("bnd")
    first = w.json_part({"a": 1}, name="metadata")
    second = w.part(b"\x00\x01", content_type="application/octet-stream", name="audio")
    assert first == (
        b'--bnd\r\nContent-Disposition: form-data; name="metadata"\r\n'
        b"Content-Type: application/json; charset=UTF-8\r\n\r\n"
        b'{"a":1}\r\n--bnd'
    )
    assert second == (
        b'\r\nContent-Disposition: form-data; name="audio"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--bnd"
    )
    assert w.close() == b"--\r\n"
    assert w.close() == b""
    with pytest.raises(ValueError, match="closed"):
        w.part(b"", content_type="text/plain")


def test_writer_defaults_b_mp_03() -> None:
    """Ambiguities #1/#2: emit multipart/related with a random hex boundary, no stray ';'."""
    w = MultipartWriter()
    assert re.fullmatch(r"[0-9a-f]{40,70}", w.boundary)
    assert w.content_type == f"multipart/related; boundary={w.boundary}"
    assert MultipartWriter().boundary != w.boundary
    assert MultipartWriter(subtype="form-data").content_type.startswith("multipart/form-data; ")
    assert parse_content_type(w.content_type) == ("multipart/related", w.boundary)
    assert w.close() == f"--{w.boundary}--\r\n".encode()  # no parts at all


def test_writer_directive_and_attachment_headers_b_mp_04_b_mp_07() -> None:
    """B-MP-04 headers; B-MP-06 one JSON part per directive; B-MP-07 Content-ID <id>."""
    w = MultipartWriter()
    speak = Directive.create("SpeechSynthesizer", "Speak", {"url": "cid:abc-123"})
    body = (
        w.directive_part(speak)
        + w.attachment_part(Attachment("abc-123", b"ID3mp3"))
        + w.directive_part(system_exception(400, "bad"))
        + w.close()
    )
    got = collect_parts(body, w.content_type)
    assert next(p.name for p in got) == f"speakDirective-{speak.header.message_id}"
    assert got[0].headers["content-type"] == "application/json; charset=UTF-8"
    assert got[0].is_json and json.loads(got[0].body) == speak.to_json()
    assert got[1].headers["content-id"] == "<abc-123>"  # bracketed on the wire
    assert got[1].content_id == "abc-123" and got[1].content_type == "application/octet-stream"
    assert got[1].name is not None and got[1].name.startswith("attachment-")
    assert got[1].body == b"ID3mp3" and not got[1].is_json
    assert got[2].name is not None and got[2].name.startswith("exception-")
    for p in got:
        assert p.headers["content-disposition"].startswith("form-data; name=")


def test_writer_event_and_audio_parts_b_mp_05() -> None:
    w = MultipartWriter(subtype="form-data")
    got = collect_parts(w.event_part({"e": 1}) + w.audio_part(b"pcm") + w.close(), w.content_type)
    assert [(p.name, p.content_type) for p in got] == [
        ("metadata", "application/json"),
        ("audio", "application/octet-stream"),
    ]


def test_writer_refuses_bodies_with_the_boundary_and_bad_headers_b_mp_02() -> None:
    w = MultipartWriter("bnd")
    with pytest.raises(ValueError, match="boundary"):
        w.part(b"x\r\n--bnd", content_type="text/plain")
    with pytest.raises(ValueError):
        w.part(b"x", content_type="text/plain\r\nX-Evil: 1")
    with pytest.raises(ValueError):
        w.part(b"x", content_type="text/plain", name='a"b')
    with pytest.raises(BadRequest):
        MultipartWriter("bad boundary ")
    assert w.parts_written == 0
    assert w.part(b"x", content_type="text/plain", content_id="<id>").count(b"<id>") == 1


# ---------------------------------------------------------------- seed examples


def test_seed_request_example_b_ev_01_b_mp_05() -> None:
    """Seed 'Sending event messages' request: metadata JSON part, then audio."""
    _, boundary = parse_content_type(SEED_REQUEST_CT)
    events = parse(SEED_REQUEST, boundary)
    got = parts(events)
    assert isinstance(events[-1], BodyEnded)
    assert [h["content-disposition"] for h, _ in got] == [
        'form-data; name="metadata"',
        'form-data; name="audio"',
    ]
    assert got[0][1].startswith(b"{\r\n") and got[0][1].endswith(b"}\r\n")
    assert got[1][1] == b"[[ binary audio attachment ]]"


def test_seed_response_example_b_mp_06_b_mp_07() -> None:
    """Seed event response: Speak, its attachment (bare Content-ID), RenderText."""
    got = collect_parts(SEED_RESPONSE, SEED_RESPONSE_CT)
    assert [p.name for p in got] == [
        "speakDirective-836d8db7-5e72-4fb2-9834-7c59291e1f8e",
        "attachment-39b2f844-b168-4dc2-bea7-d5c249e446e3",
        "renderTextDirective-b2c92b0f-27af-4f5c-b7e7-af7a270c464b",
    ]
    assert [p.is_json for p in got] == [True, False, True]
    speak = json.loads(got[0].body)["directive"]
    assert speak["payload"]["url"] == f"cid:{got[1].content_id}"
    assert got[1].content_id == "d329085c-379e-48aa-b871-7ecebdbe831d"
    assert got[1].body == b"[[ binary audio attachment ]]\r\n"
    assert json.loads(got[2].body)["directive"]["payload"] == {"text": "Nice to meet you."}


def test_seed_error_example_b_st_01() -> None:
    got = collect_parts(SEED_ERROR_400, SEED_ERROR_CT)
    assert len(got) == 1 and got[0].name is not None and got[0].name.startswith("exception-")
    assert json.loads(got[0].body)["directive"]["payload"]["code"] == 400


def test_seed_downchannel_hello_stays_open_b_mp_02() -> None:
    """The downchannel body never ends: Hello is complete once '--b' follows it."""
    _, boundary = parse_content_type(SEED_RESPONSE_CT)
    parser = MultipartParser(boundary)
    events = merged(parser.feed(SEED_DOWNCHANNEL_HELLO))
    assert [type(e) for e in events] == [PartStarted, PartData, PartEnded]
    assert isinstance(events[1], PartData)
    assert json.loads(events[1].data)["directive"]["header"]["name"] == "Hello"
    assert parser.buffered_bytes == 0
    with pytest.raises(BadRequest, match="truncated"):
        parser.close()


# ---------------------------------------------------------------- immediacy and streaming


def test_part_started_and_ended_without_waiting_for_more_bytes_b_mp_09() -> None:
    """PartStarted when the header block ends, PartEnded as soon as '\\r\\n--b' is seen."""
    w = MultipartWriter("bnd")
    part = w.json_part({"directive": {}}, name="d")
    head, _, body = part.partition(b"\r\n\r\n")
    parser = MultipartParser("bnd")
    assert parser.feed(head) == []
    assert [type(e) for e in parser.feed(b"\r\n\r\n")] == [PartStarted]
    events = parser.feed(body)  # ends exactly with the delimiter '\r\n--bnd'
    assert events == [PartData(b'{"directive":{}}'), PartEnded(0)]
    assert parser.buffered_bytes == 0


def test_audio_streams_through_without_buffering_b_au_02() -> None:
    """A 1 MB audio part fed in 6,400-byte chunks comes out chunk by chunk."""
    w = MultipartWriter("bnd", subtype="form-data")
    audio = bytes(range(256)) * 4096  # 1 MiB, full of CR/LF and '-' bytes
    parser = MultipartParser("bnd")
    parser.feed(w.event_part({"event": {}}))
    parser.feed(w.part(b"", content_type="application/octet-stream", name="audio")[:-7])
    received = 0
    for offset in range(0, len(audio), 6400):
        chunk = audio[offset : offset + 6400]
        events = parser.feed(chunk)
        received += sum(len(e.data) for e in events if isinstance(e, PartData))
        assert offset + len(chunk) - received <= len("\r\n--bnd")
        assert parser.buffered_bytes <= len("\r\n--bnd")
    tail = merged(feed_all(parser, [b"\r\n--bnd--\r\n"]))
    assert received + sum(len(e.data) for e in tail if isinstance(e, PartData)) == len(audio)
    assert isinstance(tail[-1], BodyEnded)


def test_one_byte_at_a_time_b_mp_02() -> None:
    _, boundary = parse_content_type(SEED_RESPONSE_CT)
    one_shot = parse(SEED_RESPONSE, boundary)
    parser = MultipartParser(boundary)
    chunks = [SEED_RESPONSE[i : i + 1] for i in range(len(SEED_RESPONSE))]
    assert merged(feed_all(parser, chunks)) == merged(one_shot)


# ---------------------------------------------------------------- accepted quirks


def test_preamble_before_first_delimiter_is_skipped() -> None:
    body = raw("this is a preamble --simple-boundary-ish", "--" + B, "", "x", "--" + B + "--")
    assert parts(parse(body)) == [({}, b"x")]


def test_lf_only_line_ends_are_accepted() -> None:
    body = f"--{B}\nContent-Type: text/plain\n\nhello\n--{B}\n\nworld\n--{B}--\n".encode()
    assert parts(parse(body)) == [({"content-type": "text/plain"}, b"hello"), ({}, b"world")]


def test_transport_padding_after_delimiters() -> None:
    body = raw(f"--{B} \t", "A: 1", "", "x", f"--{B}\t", "", "y", f"--{B}--  ", "")
    assert parts(parse(body)) == [({"a": "1"}, b"x"), ({}, b"y")]


def test_parts_without_headers_and_empty_bodies() -> None:
    body = raw(f"--{B}", "", "", f"--{B}", "", "z", f"--{B}--")
    assert parts(parse(body)) == [({}, b""), ({}, b"z")]


def test_headers_are_case_insensitive_and_first_wins() -> None:
    body = raw(
        f"--{B}",
        "CONTENT-type :  Application/JSON ; Charset=utf-8",
        'content-DISPOSITION: form-data; NAME="meta"',
        "Content-Type: text/plain",
        "",
        "{}",
        f"--{B}--",
    )
    (started,) = [e for e in parse(body) if isinstance(e, PartStarted)]
    assert started.content_type == "application/json" and started.is_json
    assert started.name == "meta"
    assert started.headers["content-type"] == "Application/JSON ; Charset=utf-8"


@pytest.mark.parametrize("cid", ["abc-1", "<abc-1>", " <abc-1> "])
def test_content_id_with_or_without_brackets_ambiguity_3(cid: str) -> None:
    """B-MP-07/B-MP-08: Content-ID accepted bare or bracketed."""
    body = raw(f"--{B}", f"Content-ID: {cid}", "", "x", f"--{B}--")
    (started,) = [e for e in parse(body) if isinstance(e, PartStarted)]
    assert started.content_id == "abc-1"


def test_json_part_without_content_type_ambiguity_39() -> None:
    body = raw(f"--{B}", "", "{}", f"--{B}", "", "{}", f"--{B}", "Content-Type: x/y+json", "", "{}")
    started = [
        e for e in parse(body + b"\r\n--" + B.encode() + b"--") if isinstance(e, PartStarted)
    ]
    assert [s.is_json for s in started] == [True, False, True]
    assert [s.content_type for s in started] == ["", "", "x/y+json"]
    assert started[0].name is None and started[0].content_id is None


def test_quoted_name_with_escapes_and_semicolons() -> None:
    body = raw(f"--{B}", 'Content-Disposition: form-data; name="a;\\"b"', "", "", f"--{B}--")
    (started,) = [e for e in parse(body) if isinstance(e, PartStarted)]
    assert started.name == 'a;"b'


def test_epilogue_and_later_data_are_ignored() -> None:
    parser = MultipartParser(B)
    events = parser.feed(raw(f"--{B}", "", "x", f"--{B}--", "this is the epilogue", ""))
    assert isinstance(events[-1], BodyEnded)
    assert parser.feed(f"--{B}\r\nA: 1\r\n\r\nmore".encode()) == []
    assert parser.close() == []


def test_epilogue_that_looks_like_a_header_is_not_a_part() -> None:
    """Only 'Content-*:' right after the close line reads as a new part (#6)."""
    events = parse(raw(f"--{B}", "", "x", f"--{B}--", "Note: an epilogue", ""))
    assert parts(events) == [({}, b"x")] and isinstance(events[-1], BodyEnded)


def test_body_ended_waits_for_close_when_nothing_follows() -> None:
    """After '--b--' BodyEnded is reported once it is clear no part follows (#6)."""
    parser = MultipartParser(B)
    events = parser.feed(raw(f"--{B}", "", "x", f"--{B}--", ""))
    assert not any(isinstance(e, BodyEnded) for e in events)
    assert parser.close() == [BodyEnded()]
    assert parse(raw(f"--{B}", "", "x", f"--{B}--"))[-1] == BodyEnded()  # no final CRLF


def test_double_close_delimiter_is_an_epilogue() -> None:
    body = raw(f"--{B}", "", "x", f"--{B}--", f"--{B}--", "")
    assert parts(parse(body)) == [({}, b"x")]
    assert parts(parse(raw(f"--{B}", "", "x", f"--{B}--", f"--{B}junk"))) == [({}, b"x")]


SEND_EVENT_STYLE = [
    # Send_Event.md: the body is closed after the JSON part, then an audio part follows.
    raw(
        f"--{B}",
        "Content-Type: application/json",
        "",
        "{}",
        f"--{B}--",
        f"--{B}",
        "Content-Type: application/octet-stream",
        "",
        "pcm",
        f"--{B}--",
        "",
    ),
    raw(
        f"--{B}",
        "Content-Type: application/json",
        "",
        "{}",
        f"--{B}--",
        "Content-Type: application/octet-stream",
        "",
        "pcm",
        f"--{B}--",
        "",
    ),
]


@pytest.mark.parametrize("body", SEND_EVENT_STYLE)
def test_close_then_another_part_is_an_error_by_default_ambiguity_6(body: bytes) -> None:
    expect_bad_request(body, "follows the close delimiter")


@pytest.mark.parametrize("body", SEND_EVENT_STYLE)
def test_close_then_another_part_is_accepted_when_lenient_ambiguity_6(body: bytes) -> None:
    events = parse(body, lenient_close=True)
    assert [b for _, b in parts(events)] == [b"{}", b"pcm"]
    assert isinstance(events[-1], BodyEnded)
    chunks = [body[i : i + 1] for i in range(len(body))]
    assert merged(feed_all(MultipartParser(B, lenient_close=True), chunks)) == merged(events)


# ---------------------------------------------------------------- errors


def test_header_block_too_large() -> None:
    limits = MultipartLimits(max_header_bytes=64)
    big = raw(f"--{B}", "X-Big: " + "a" * 100, "", "x", f"--{B}--")
    expect_bad_request(big, "exceed 64 bytes", limits=limits)
    # Also when the header block never ends and arrives in small pieces.
    endless = [f"--{B}\r\n".encode()] + [b"X-A: b\r\n"] * 20
    expect_bad_request(endless, "exceed 64 bytes", limits=limits)


def test_too_many_parts() -> None:
    body = raw(f"--{B}", "", "1", f"--{B}", "", "2", f"--{B}", "", "3", f"--{B}--")
    assert len(parts(parse(body, limits=MultipartLimits(max_parts=3)))) == 3
    expect_bad_request(body, "more than 2 parts", limits=MultipartLimits(max_parts=2))


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("no colon here", "malformed header line in part 0"),
        (": empty name", "malformed header line"),
        ("bad name: x", "malformed header line"),
        ("[ Message Header ]", "malformed header line"),
        (" folded: x", "folding is not supported"),
    ],
)
def test_malformed_header_lines(line: str, match: str) -> None:
    expect_bad_request(raw(f"--{B}", "A: 1", line, "", "x", f"--{B}--"), match)


def test_missing_opening_delimiter() -> None:
    expect_bad_request(b"", "missing opening delimiter.*empty body")
    expect_bad_request(b"hello", "missing opening delimiter")
    expect_bad_request(
        b"x--" + B.encode() + b"\r\n", "missing opening delimiter"
    )  # not at line start
    limits = MultipartLimits(max_preamble_bytes=100)
    expect_bad_request(b"p" * 200, "not found in the first 100 bytes", limits=limits)
    expect_bad_request([b"p"] * 200, "not found in the first 100 bytes", limits=limits)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (raw(f"--{B}", "A: 1"), "inside the headers of part 0"),
        (raw(f"--{B}", "", "half a bo"), "inside part 0"),
        (raw(f"--{B}", "", "x", f"--{B}"), "after a delimiter"),
        (raw(f"--{B}", "", "x", f"--{B}-"), "after a delimiter"),
        (raw(f"--{B}", "", "x", f"--{B}  "), "after a delimiter"),
    ],
)
def test_truncated_body_at_close(body: bytes, match: str) -> None:
    expect_bad_request(body, f"truncated {match}" if "inside" not in match else match)


@pytest.mark.parametrize("after", ["X", "-X", " x", "\rX"])
def test_malformed_delimiter_line(after: str) -> None:
    body = f"--{B}\r\n\r\nx\r\n--{B}{after}\r\n".encode()
    expect_bad_request(body, "malformed delimiter line")


def test_error_after_events_is_raised_by_the_next_call() -> None:
    """Events seen before an error are returned; the error comes from the next call."""
    parser = MultipartParser(B)
    events = parser.feed(raw(f"--{B}", "", "x", f"--{B}", "no colon", "", ""))
    assert [type(e) for e in events] == [PartStarted, PartData, PartEnded]
    with pytest.raises(BadRequest, match="malformed header"):
        parser.feed(b"more")
    with pytest.raises(BadRequest, match="malformed header"):
        parser.close()


def test_invalid_boundary_for_parser() -> None:
    with pytest.raises(BadRequest, match="1-70"):
        MultipartParser("")


# ---------------------------------------------------------------- property-based

BOUNDARY = "0f3c9e1b7a5d4c2e8f6a0b1c3d5e7f9a1b2c3d4e5f6a7b8c"
_DELIM = b"\r\n--" + BOUNDARY.encode()
_TRICKY = [
    b"\r",
    b"\n",
    b"\r\n",
    b"-",
    b"--",
    b"\r\n--",
    b"\n--",
    b"\r\r\n\n",
    b"--" + BOUNDARY[:10].encode(),
    b"\r\n--" + BOUNDARY[:-1].encode(),
    b"\n--" + BOUNDARY[:25].encode(),
    b"--" + BOUNDARY.encode() + b"--",
    b" \t",
    b":",
]
part_bodies = (
    st.lists(st.one_of(st.sampled_from(_TRICKY), st.binary(max_size=40)), max_size=12)
    .map(b"".join)
    .filter(lambda b: b"\n--" + BOUNDARY.encode() not in b)
)
part_specs = st.tuples(
    part_bodies,
    st.sampled_from(["application/json", "application/octet-stream", "text/plain; a=b"]),
    st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)),
    st.one_of(st.none(), st.uuids().map(str)),
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(part_specs, max_size=5), cuts=st.lists(st.integers(0, 10**6), max_size=30))
def test_round_trip_with_random_splits_b_mp_02(
    specs: list[tuple[bytes, str, str | None, str | None]], cuts: list[int]
) -> None:
    """Writer -> parser round trip: any split of the bytes gives the same parts."""
    w = MultipartWriter(BOUNDARY)
    body = (
        b"".join(
            w.part(data, content_type=ct, name=name, content_id=cid)
            for data, ct, name, cid in specs
        )
        + w.close()
    )
    parser = MultipartParser(BOUNDARY)
    events: list[MultipartEvent] = []
    for chunk in split(body, cuts):
        events += parser.feed(chunk)
        assert parser.buffered_bytes <= 16 * 1024 + len(_DELIM)
    events += parser.close()
    assert isinstance(events[-1], BodyEnded)
    assert all(not isinstance(e, PartData) or e.data for e in events)  # no empty chunks
    got = parts(events)
    assert [b for _, b in got] == [s[0] for s in specs]
    for (headers, _), (_, ct, name, cid) in zip(got, specs):
        assert headers["content-type"] == ct
        assert headers["content-disposition"].startswith("form-data; name=")
        if name is not None:
            assert headers["content-disposition"] == f'form-data; name="{name}"'
        assert headers.get("content-id") == (None if cid is None else f"<{cid}>")
    assert merged(events) == merged(parse(body, BOUNDARY))


@settings(max_examples=100, deadline=None)
@given(specs=st.lists(part_specs, min_size=1, max_size=3))
def test_round_trip_one_byte_at_a_time(
    specs: list[tuple[bytes, str, str | None, str | None]],
) -> None:
    w = MultipartWriter(BOUNDARY)
    body = b"".join(w.part(d, content_type=c, name=n, content_id=i) for d, c, n, i in specs)
    parser = MultipartParser(BOUNDARY)
    events = feed_all(parser, [body[i : i + 1] for i in range(len(body))], close=False)
    # The downchannel case: no close delimiter yet, every part already complete.
    assert sum(isinstance(e, PartEnded) for e in events) == len(specs)
    assert [b for _, b in parts(events)] == [s[0] for s in specs]


_FRAGMENTS = [
    b"--" + B.encode(),
    b"\r\n--" + B.encode(),
    b"--" + B.encode() + b"--",
    b"\r\n",
    b"\n",
    b"\r",
    b"--",
    b"-",
    b"A: b",
    b"Content-Type: x",
    b" ",
    b"\t",
    b"x",
]


@settings(max_examples=300, deadline=None)
@given(
    body=st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.binary(max_size=8)), max_size=25).map(
        b"".join
    ),
    cuts=st.one_of(st.lists(st.integers(0, 1000), max_size=10), st.none()),
    lenient=st.booleans(),
)
def test_any_input_split_gives_same_outcome(
    body: bytes, cuts: list[int] | None, lenient: bool
) -> None:
    """Arbitrary bytes: same events, same error, however the input is split (None: 1 byte)."""

    def outcome(chunks: list[bytes]) -> tuple[list[MultipartEvent], str | None]:
        parser = MultipartParser(B, lenient_close=lenient)
        events: list[MultipartEvent] = []
        try:
            for chunk in chunks:
                events += parser.feed(chunk)
            events += parser.close()
        except BadRequest as exc:
            assert exc.description
            return merged(events), exc.description
        return merged(events), None

    chunks = split(body, cuts) if cuts is not None else [bytes([b]) for b in body]
    assert outcome(chunks) == outcome([body])
