"""Multi-turn dialogue end to end over real sockets: "set the volume" -> a spoken question
with SpeechRecognizer.ExpectSpeech -> the follow-up (text or voice) with speechId ->
DeviceControl.SetValue (B-SR-05, B-SR-06, B-DI-07, ambiguity #10).

The voice follow-up is speech synthesised at test time by the project's own voice and
sent as 200 ms audio parts; the server's real VAD and Whisper recognise it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable
from typing import Any

import pytest
from support.cic import (
    CONTENT_TYPE,
    auth_headers,
    event_body,
    event_json,
    read_parts,
    with_device,
)
from support.rawh2 import RawH2
from support.voice import utterance

from opencic.protocol.messages import parse_directive_json
from opencic.protocol.schema import validate_directive_strict
from opencic.speech.audio import CAPTURE_FORMAT, CHUNK_BYTES, iter_chunks


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def names(directives: list[dict[str, Any]]) -> list[str]:
    return [f"{d['header']['namespace']}.{d['header']['name']}" for d in directives]


async def post(client: RawH2, token: str, body: bytes) -> tuple[list[dict[str, Any]], list[Any]]:
    """POST /v1/events; the JSON directives of the 200 answer and all its parts."""
    resp = await client.request("POST", "/v1/events", auth_headers(token, CONTENT_TYPE), body)
    assert resp.status == 200, (resp.status, resp.body[:300])
    parts, closed = read_parts(resp.headers["content-type"], resp.body)
    assert closed
    directives = [p.directive for p in parts if "json" in p.headers.get("content-type", "")]
    for directive in directives:
        validate_directive_strict(parse_directive_json({"directive": directive}))
    return directives, parts


async def text(client: RawH2, token: str, words: str, dialog: str, **payload: Any) -> Any:
    doc = event_json("TextRecognizer", "Recognize", {"text": words, **payload}, dialog)
    return await post(client, token, event_body(doc))


async def voice(client: RawH2, token: str, words: str, dialog: str, **payload: Any) -> Any:
    body = {"lang": "en", "profile": "CLOSE_TALK", "format": CAPTURE_FORMAT, **payload}
    doc = event_json("SpeechRecognizer", "Recognize", body, dialog)
    audio = list(iter_chunks(utterance(words, trail_ms=1500), CHUNK_BYTES))
    return await post(client, token, event_body(doc, *audio))


async def ask_volume(client: RawH2, token: str, dialog: str) -> dict[str, Any]:
    """"set the volume" by text: the question and its ExpectSpeech, checked."""
    directives, parts = await text(client, token, "set the volume", dialog)
    assert names(directives) == [
        "SpeechSynthesizer.Speak",
        "Clova.RenderText",
        "SpeechRecognizer.ExpectSpeech",
    ]
    assert all(d["header"]["dialogRequestId"] == dialog for d in directives)  # B-DI-07
    assert directives[1]["payload"]["text"] == "What volume level would you like?"
    cid = directives[0]["payload"]["url"][4:]
    assert any(p.headers.get("content-id") == f"<{cid}>" and len(p.body) > 1000 for p in parts)
    expect = directives[2]["payload"]
    assert set(expect) == {"expectSpeechId", "explicit", "timeoutInMilliseconds"}
    assert expect["explicit"] is True and expect["timeoutInMilliseconds"] == 8000
    assert isinstance(expect["expectSpeechId"], str) and expect["expectSpeechId"]
    return dict(expect)



@pytest.mark.parametrize(
    ("answer", "value", "same_dialog"),
    [
        ("five", "5", True),
        ("level 5", "5", False),
        ("50 percent", "5", True),
    ],
)
def test_text_follow_up_sets_the_volume(
    cic_server: Any, answer: str, value: str, same_dialog: bool
) -> None:
    """B-SR-06: speechId = expectSpeechId, explicit copied; the dialogue ID may be the
    question's or a new one (ambiguity #10): the answer echoes the follow-up's."""
    dialog = str(uuid.uuid4())
    follow_dialog = dialog if same_dialog else str(uuid.uuid4())

    async def go(client: RawH2, token: str, sid: int) -> list[dict[str, Any]]:
        expect = await ask_volume(client, token, dialog)
        directives, _ = await text(
            client, token, answer, follow_dialog,
            speechId=expect["expectSpeechId"], explicit=expect["explicit"],
        )
        return directives  # type: ignore[no-any-return]

    directives = run(with_device(cic_server, go))
    assert names(directives) == ["DeviceControl.SetValue"]
    assert directives[0]["payload"] == {"target": "volume", "value": value}
    assert directives[0]["header"]["dialogRequestId"] == follow_dialog


def test_unknown_speech_id_is_a_fresh_request(cic_server: Any) -> None:
    dialog = str(uuid.uuid4())

    async def go(client: RawH2, token: str, sid: int) -> tuple[Any, Any]:
        expect = await ask_volume(client, token, dialog)
        stale, _ = await text(client, token, "five", dialog, speechId=str(uuid.uuid4()))
        # The question ended with that request: its own id no longer answers it either.
        late, _ = await text(client, token, "five", dialog, speechId=expect["expectSpeechId"])
        return stale, late

    stale, late = run(with_device(cic_server, go))
    for directives in (stale, late):
        assert names(directives) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
        assert "five" in directives[1]["payload"]["text"]  # the fallback answer
        assert all(d["header"]["dialogRequestId"] == dialog for d in directives)


@pytest.mark.parametrize(("answer", "value"), [("five", "5"), ("level five", "5"), ("seven", "7")])
def test_voice_follow_up_sets_the_volume(cic_server: Any, answer: str, value: str) -> None:
    """The question asked by text, answered by voice: SpeechRecognizer.Recognize with the
    speechId; StopCapture and the answer carry the follow-up's dialogRequestId.

    A bare "five" in our test voice is heard as "Bye." by Whisper tiny.en on its own;
    the question's hint (the recogniser's prompt) makes it "5."."""
    dialog, follow_dialog = str(uuid.uuid4()), str(uuid.uuid4())

    async def go(client: RawH2, token: str, sid: int) -> tuple[Any, list[str]]:
        expect = await ask_volume(client, token, dialog)
        directives, _ = await voice(
            client, token, answer, follow_dialog,
            speechId=expect["expectSpeechId"], explicit=True,
        )
        st = client.streams[sid]
        down, _ = read_parts(st.headers["content-type"], bytes(st.body), st.ended)
        stops = [
            p.directive["header"].get("dialogRequestId")
            for p in down
            if p.directive is not None and p.directive["header"]["name"] == "StopCapture"
        ]
        return directives, stops

    directives, stops = run(with_device(cic_server, go))
    assert stops == [follow_dialog]  # B-SR-01 on the downchannel
    assert names(directives) == ["DeviceControl.SetValue"], json.dumps(directives)
    assert directives[0]["payload"] == {"target": "volume", "value": value}
    assert directives[0]["header"]["dialogRequestId"] == follow_dialog


@pytest.mark.parametrize(("request_text", "answer", "kind"), [
    ("set a timer", "ten minutes", "TIMER"), ("set an alarm", "seven thirty", "ALARM")])
def test_spoken_answers_complete_alarms_and_timers(
        cic_server: Any, request_text: str, answer: str, kind: str) -> None:
    """"Set a timer" -> "For how long?" -> a spoken "ten minutes" -> Alerts.SetAlert."""
    dialog, follow_dialog = str(uuid.uuid4()), str(uuid.uuid4())

    async def go(client: RawH2, token: str, sid: int) -> Any:
        asked, _ = await text(client, token, request_text, dialog)
        assert names(asked)[-1] == "SpeechRecognizer.ExpectSpeech"
        expect = asked[-1]["payload"]
        directives, _ = await voice(client, token, answer, follow_dialog,
                                    speechId=expect["expectSpeechId"], explicit=True)
        return directives

    directives = run(with_device(cic_server, go))
    assert names(directives) == ["Alerts.SetAlert"], json.dumps(directives)
    assert directives[0]["payload"]["type"] == kind
    assert directives[0]["header"]["dialogRequestId"] == follow_dialog
