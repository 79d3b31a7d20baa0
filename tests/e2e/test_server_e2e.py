"""The CIC endpoint over real HTTP/2 sockets against a real `opencic serve` process."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import miniaudio
import pytest
from support.cic import (
    BOUNDARY,
    CONTENT_TYPE,
    auth_headers,
    close,
    event_body,
    event_json,
    exception_of,
    open_downchannel,
    part,
    read_parts,
    with_device,
)
from support.rawh2 import RawH2


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def device() -> str:
    return f"dev-{uuid.uuid4().hex[:12]}"


def downchannel_parts(client: RawH2, sid: int) -> tuple[list[Any], bool]:
    st = client.streams[sid]
    return read_parts(st.headers["content-type"], bytes(st.body), st.ended)



# ------------------------------------------------------------------ basics


def test_ping_is_204(cic_server: Any) -> None:
    """B-KA-03: GET /ping -> 204, and HTTP/2 PING frames are acknowledged."""
    async def go() -> None:
        client = await cic_server.connect()
        try:
            resp = await client.request("GET", "/ping", auth_headers(None))
            assert resp.status == 204 and resp.body == b""
            await client.ping()
        finally:
            await client.close()
    run(go())


def test_downchannel_says_hello_first_and_stays_open(cic_server: Any) -> None:
    """B-DC-02: 200 multipart/related, Clova.Hello first (no dialogRequestId), kept open."""
    async def go(client: RawH2, token: str, sid: int) -> None:
        st = client.streams[sid]
        assert st.headers["content-type"].startswith("multipart/related; boundary=")
        parts, closed = downchannel_parts(client, sid)
        assert not closed
        assert parts[0].qualified_name == "Clova.Hello"
        assert parts[0].directive["payload"] == {}
        assert "dialogRequestId" not in parts[0].directive["header"]
        await asyncio.sleep(1.0)
        assert not st.ended
        await client.ping()
    run(with_device(cic_server, go))


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer not-a-real-token"])
def test_downchannel_rejects_bad_tokens_with_401(cic_server: Any, header: str | None) -> None:
    """B-CN-04 / B-DC-06: missing or unknown token -> 401 + System.Exception(401)."""
    async def go() -> None:
        client = await cic_server.connect()
        try:
            headers = auth_headers(None)
            if header is not None:
                headers["authorization"] = header
            resp = await client.request("GET", "/v1/directives", headers)
            assert resp.status == 401
            exception_of(resp)
        finally:
            await client.close()
    run(go())


def test_expired_and_revoked_tokens_get_401(cic_server: Any) -> None:
    """B-CN-04 (also on PostgreSQL: tests/e2e/test_backends_e2e.py)."""
    expired = cic_server.create_token(device(), 60, now=0.0)  # expired in 1970
    revoked = cic_server.create_token(device(), 3600)
    assert cic_server.revoke_token(revoked)

    async def go() -> None:
        client = await cic_server.connect()
        try:
            for token in (expired, revoked):
                resp = await client.request("GET", "/v1/directives", auth_headers(token))
                assert resp.status == 401
                assert "expired" in exception_of(resp)["description"]
        finally:
            await client.close()
    run(go())


def test_new_downchannel_replaces_the_old_one(cic_server: Any) -> None:
    """B-DC-04: the older downchannel is closed cleanly (closing delimiter) for the newer."""
    token = cic_server.create_token(device())

    async def go() -> None:
        first, second = await cic_server.connect(), await cic_server.connect()
        try:
            sid1 = await open_downchannel(first, token)
            sid2 = await open_downchannel(second, token)
            st1 = await first.wait(sid1, lambda s: s.ended, 5)
            assert st1.reset is None
            parts, closed = downchannel_parts(first, sid1)
            assert closed and [p.qualified_name for p in parts] == ["Clova.Hello"]
            assert not second.streams[sid2].ended
            # Events now need the new downchannel's connection (B-EV-02).
            body = event_body(event_json("SpeechSynthesizer", "SpeechStarted", {"token": "t"}))
            old = await first.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
            assert old.status == 412
            new = await second.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
            assert new.status == 204
        finally:
            await first.close()
            await second.close()
    run(go())


def test_third_downchannel_request_in_a_short_window_gets_429(cic_server: Any) -> None:
    """B-DC-05 / ambiguity #7: more than two requests within the window -> 429."""
    token = cic_server.create_token(device())

    async def go() -> None:
        client = await cic_server.connect()
        try:
            await open_downchannel(client, token)
            await open_downchannel(client, token)
            resp = await client.request("GET", "/v1/directives", auth_headers(token))
            assert resp.status == 429
            assert "too many" in exception_of(resp)["description"]
        finally:
            await client.close()
    run(go())


def test_event_without_downchannel_gets_412(cic_server: Any) -> None:
    """B-EV-02: no downchannel at all, or one on another connection -> 412."""
    token = cic_server.create_token(device())
    body = event_body(event_json("TextRecognizer", "Recognize", {"text": "hello"}, str(uuid.uuid4())))

    async def go() -> None:
        a, b = await cic_server.connect(), await cic_server.connect()
        try:
            resp = await a.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
            assert resp.status == 412
            exception_of(resp)
            await open_downchannel(a, token)
            resp = await b.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
            assert resp.status == 412
            resp = await a.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
            assert resp.status == 200
        finally:
            await a.close()
            await b.close()
    run(go())


def test_event_without_token_gets_401_and_connection_survives(cic_server: Any) -> None:
    async def go(client: RawH2, token: str, sid: int) -> None:
        body = event_body(event_json("TextRecognizer", "Recognize", {"text": "hi"}, str(uuid.uuid4())))
        resp = await client.request("POST", "/v1/events", auth_headers(None, CONTENT_TYPE), body)
        assert resp.status == 401
        exception_of(resp)
        assert not client.streams[sid].ended
        await client.ping()
    run(with_device(cic_server, go))


# ------------------------------------------------------------------ text round trip


def test_text_request_gets_speak_with_mp3_and_render_text(cic_server: Any) -> None:
    """Seed example: Speak (cid: attachment, MP3) + RenderText, dialogRequestId echoed (B-DI-07)."""
    async def go(client: RawH2, token: str, sid: int) -> None:
        dialog = str(uuid.uuid4())
        body = event_body(event_json("TextRecognizer", "Recognize", {"text": "what time is it"}, dialog))
        resp = await client.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
        assert resp.status == 200, resp.body[:300]
        assert resp.headers["content-type"].startswith("multipart/related; boundary=")
        parts, closed = read_parts(resp.headers["content-type"], resp.body)
        assert closed
        directives = [p for p in parts if p.headers.get("content-type", "").startswith("application/json")]
        names = [p.qualified_name for p in directives]
        assert names == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
        for d in directives:
            assert d.directive["header"]["dialogRequestId"] == dialog
        speak = directives[0].directive["payload"]
        assert speak["format"] == "AUDIO_MPEG" and speak["url"].startswith("cid:")
        cid = speak["url"][4:]
        attachments = [p for p in parts if p.headers.get("content-id") == f"<{cid}>"]
        assert len(attachments) == 1, [p.headers for p in parts]
        assert attachments[0].headers["content-type"] == "application/octet-stream"
        decoded = miniaudio.decode(attachments[0].body, nchannels=1)
        assert decoded.duration > 0.5
        text = directives[1].directive["payload"]["text"]
        assert text.startswith("It")
    run(with_device(cic_server, go))


def test_event_with_no_directives_gets_204(cic_server: Any) -> None:
    """B-EV-03: no directive -> 204 with an empty body."""
    async def go(client: RawH2, token: str, sid: int) -> None:
        body = event_body(event_json("SpeechSynthesizer", "SpeechFinished", {"token": "abc"}))
        resp = await client.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
        assert resp.status == 204 and resp.body == b""
    run(with_device(cic_server, go))


def test_unknown_path_is_404_with_exception(cic_server: Any) -> None:
    async def go() -> None:
        client = await cic_server.connect()
        try:
            resp = await client.request("GET", "/v2/nothing", auth_headers(None))
            assert resp.status == 404
            exception_of(resp)
        finally:
            await client.close()
    run(go())


# ------------------------------------------------------------------ malformed input

GOOD = event_json("TextRecognizer", "Recognize", {"text": "hello"}, "d-1")


def _doc(mutate: Callable[[dict[str, Any]], None]) -> bytes:
    doc = json.loads(json.dumps(GOOD))
    mutate(doc)
    return json.dumps(doc).encode()


MALFORMED: dict[str, tuple[str | None, bytes]] = {
    "no content type": (None, event_body(GOOD)),
    "not multipart": ("application/json", json.dumps(GOOD).encode()),
    "multipart without boundary": ("multipart/form-data", event_body(GOOD)),
    "garbage body": (CONTENT_TYPE, b"this is not a multipart body at all"),
    "empty body": (CONTENT_TYPE, b""),
    "truncated body": (CONTENT_TYPE, part(json.dumps(GOOD).encode())[:-10]),
    "no closing delimiter": (CONTENT_TYPE, part(json.dumps(GOOD).encode())),
    "first part is audio": (CONTENT_TYPE, part(b"\x00\x01" * 100, "application/octet-stream", "audio") + close()),
    "invalid json": (CONTENT_TYPE, event_body(b'{"event": {')),
    "json array": (CONTENT_TYPE, event_body(b"[1, 2, 3]")),
    "invalid utf-8": (CONTENT_TYPE, event_body(b'{"event": "\xff\xfe"}')),
    "no event wrapper": (CONTENT_TYPE, event_body({"context": [], "header": GOOD["event"]["header"]})),
    "no header": (CONTENT_TYPE, event_body(_doc(lambda d: d["event"].pop("header")))),
    "no namespace": (CONTENT_TYPE, event_body(_doc(lambda d: d["event"]["header"].pop("namespace")))),
    "no name": (CONTENT_TYPE, event_body(_doc(lambda d: d["event"]["header"].pop("name")))),
    "no messageId": (CONTENT_TYPE, event_body(_doc(lambda d: d["event"]["header"].pop("messageId")))),
    "numeric namespace": (CONTENT_TYPE, event_body(_doc(lambda d: d["event"]["header"].update(namespace=7)))),
    "payload not an object": (CONTENT_TYPE, event_body(_doc(lambda d: d["event"].update(payload="x")))),
    "no payload": (CONTENT_TYPE, event_body(_doc(lambda d: d["event"].pop("payload")))),
    "context not an array": (CONTENT_TYPE, event_body(_doc(lambda d: d.update(context={"a": 1})))),
    "two json parts": (CONTENT_TYPE, part(json.dumps(GOOD).encode()) + part(json.dumps(GOOD).encode()) + close()),
    "oversized json part": (CONTENT_TYPE, event_body(_doc(lambda d: d["event"]["payload"].update(text="x" * 300_000)))),
    "oversized part headers": (CONTENT_TYPE, (f"--{BOUNDARY}\r\nX-Big: {'a' * 20000}\r\n\r\n{{}}\r\n").encode() + close()),
}


def test_malformed_events_get_400_and_the_downchannel_survives(cic_server: Any) -> None:
    """B-EV-04: each malformed input -> 400 + System.Exception(400); the server keeps
    serving and the device's downchannel on the same connection stays open."""
    async def go(client: RawH2, token: str, sid: int) -> None:
        descriptions: dict[str, str] = {}
        for label, (ctype, body) in MALFORMED.items():
            resp = await client.request("POST", "/v1/events", auth_headers(token, ctype), body)
            assert resp.status == 400, (label, resp.status, resp.body[:200])
            descriptions[label] = exception_of(resp)["description"]
            assert not client.streams[sid].ended, label
        # Wrong method on the events path (B-EV-04: "incorrect method").
        resp = await client.request("GET", "/v1/events", auth_headers(token))
        assert resp.status == 400
        exception_of(resp)
        assert len(set(descriptions.values())) >= 12, descriptions  # clear, specific messages
        await client.ping()
        body = event_body(event_json("TextRecognizer", "Recognize", {"text": "hello"}, str(uuid.uuid4())))
        resp = await client.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
        assert resp.status == 200
        parts, _ = downchannel_parts(client, sid)
        assert parts[0].qualified_name == "Clova.Hello" and not client.streams[sid].ended
    run(with_device(cic_server, go))


def test_request_body_cut_by_stream_reset_keeps_connection(cic_server: Any) -> None:
    async def go(client: RawH2, token: str, sid: int) -> None:
        ev = await client.start("POST", "/v1/events", auth_headers(token, CONTENT_TYPE))
        await client.send(ev, part(json.dumps(GOOD).encode()))
        await client.reset(ev)
        await asyncio.sleep(0.3)
        await client.ping()
        body = event_body(event_json("SpeechSynthesizer", "SpeechFinished", {"token": "x"}))
        resp = await client.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
        assert resp.status == 204
        assert not client.streams[sid].ended
    run(with_device(cic_server, go))


def test_internal_error_is_500_with_trace_and_server_keeps_serving(cic_server: Any) -> None:
    """B-EV-04: a failure on our side -> 500 + System.Exception with a trace id that is
    in the log; once the fault is gone the same server answers normally. The fault is
    real: the token table disappears under the running server (and comes back intact)."""
    token = cic_server.create_token(device())

    async def go() -> None:
        client = await cic_server.connect()
        try:
            await cic_server.execute_sql("ALTER TABLE tokens RENAME TO tokens_moved_away")
            try:
                resp = await client.request("GET", "/v1/directives", auth_headers(token))
            finally:
                await cic_server.execute_sql("ALTER TABLE tokens_moved_away RENAME TO tokens")
            assert resp.status == 500
            description = exception_of(resp)["description"]
            trace = description.rsplit("trace ", 1)[1].rstrip(")")
            sid = await open_downchannel(client, token)
            assert client.streams[sid].status == 200
        finally:
            await client.close()
        assert trace in cic_server.log_text()
    run(go())


def _json_parts(resp: Any) -> list[Any]:
    parts, closed = read_parts(resp.headers["content-type"], resp.body)
    assert closed
    return [p for p in parts if p.headers.get("content-type", "").startswith("application/json")]


def test_speech_synthesizer_request_is_spoken(cic_server: Any) -> None:
    """SpeechSynthesizer.Request -> a Speak of the given text with its MP3."""
    async def go(client: RawH2, token: str, sid: int) -> None:
        body = event_body(event_json("SpeechSynthesizer", "Request", {"lang": "en", "text": "Dinner is ready."}))
        resp = await client.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
        assert resp.status == 200
        directives = _json_parts(resp)
        assert [d.qualified_name for d in directives] == ["SpeechSynthesizer.Speak"]
        cid = directives[0].directive["payload"]["url"][4:]
        parts, _ = read_parts(resp.headers["content-type"], resp.body)
        mp3 = next(p.body for p in parts if p.headers.get("content-id") == f"<{cid}>")
        assert miniaudio.decode(mp3, nchannels=1).duration > 0.5
    run(with_device(cic_server, go))


def test_volume_request_controls_the_device_without_speech(cic_server: Any) -> None:
    """B-SR-11: a volume change is a DeviceControl directive, no Speak; B-DI-07 id echoed."""
    async def go(client: RawH2, token: str, sid: int) -> None:
        dialog = str(uuid.uuid4())
        context = [{"header": {"namespace": "Speaker", "name": "VolumeState"}, "payload": {"volume": 4, "muted": False}}]
        body = event_body(event_json("TextRecognizer", "Recognize", {"text": "set the volume to 7"}, dialog, context))
        resp = await client.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
        assert resp.status == 200
        directives = [d.directive for d in _json_parts(resp)]
        assert [(d["header"]["namespace"], d["header"]["name"]) for d in directives] == [("DeviceControl", "SetValue")]
        assert directives[0]["payload"] == {"target": "volume", "value": "7"}
        assert directives[0]["header"]["dialogRequestId"] == dialog
    run(with_device(cic_server, go))
