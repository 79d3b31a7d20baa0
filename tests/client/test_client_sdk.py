"""CICClient against the scripted fake server (rules the real server cannot be made to
exercise on demand: 412 once, swallowed PINGs, StopCapture mid-upload, replaced
downchannels)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_cic import FakeCIC, Message, Request, hello_time

from opencic.client import (
    AuthenticationFailed,
    Backoff,
    CICClient,
    EventResponse,
    QueuedDirective,
)
from opencic.protocol.messages import Directive, system_exception

UA_RE = re.compile(r"^[^/]+/[^/]+/\d+\.\d+\.\d+ \([^;]+;[^)]+\)$")


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def client_for(fake: FakeCIC, **kwargs: Any) -> CICClient:
    kwargs.setdefault("backoff", Backoff(initial=0.05, maximum=0.2))
    return CICClient(fake.url, "tok-123", **kwargs)


def test_connect_waits_for_hello_and_sends_auth_everywhere() -> None:
    """B-CN-03, B-CN-06, B-DC-01, B-UA-01."""

    async def main() -> None:
        async with FakeCIC() as fake, client_for(fake) as client:
            seen: list[str] = []
            assert client.is_connected
            assert len(fake.paths("/v1/directives")) == 1
            client.on("Clova.RenderText", lambda item: seen.append(item.directive.qualified_name))
            await client.recognize_text("hi")
            await client.ping()
            client.keepalive = "get"
            await client.ping()
            assert [r.path for r in fake.requests] == ["/v1/directives", "/v1/events", "/ping"]
            for req in fake.requests:
                assert req.headers["authorization"] == "Bearer tok-123"
                assert UA_RE.match(req.headers["user-agent"])
            await client.wait_idle(5)
            assert seen == ["Clova.RenderText"]

    run(main())


def test_event_body_is_form_data_metadata_then_200ms_audio_parts() -> None:
    """B-EV-01, B-EV-05, B-MP-05, B-AU-02: audio re-sliced into 6,400-byte parts."""

    async def audio() -> AsyncIterator[bytes]:
        for size in (1000, 9000, 6400, 3000):  # 19,400 bytes in odd buffers
            yield bytes([size % 251]) * size

    async def main() -> None:
        async with FakeCIC() as fake, client_for(fake) as client:
            fake.on_event = lambda req: _answer(204, [])
            response = await client.recognize_speech(audio(), lang="en")
            assert response.status == 204 and response.directives == []
            req = fake.paths("/v1/events")[0]
            assert req.headers["content-type"].startswith("multipart/form-data; boundary=")
            parts = req.parts()
            assert parts[0].name == "metadata" and parts[0].is_json
            doc = json.loads(parts[0].body)
            header = doc["event"]["header"]
            assert (header["namespace"], header["name"]) == ("SpeechRecognizer", "Recognize")
            assert header["dialogRequestId"] and header["messageId"]
            assert doc["event"]["payload"]["format"] == "AUDIO_L16_RATE_16000_CHANNELS_1"
            assert {c["header"]["name"] for c in doc["context"]} == {"VolumeState", "DeviceState"}
            audio_parts = parts[1:]
            assert [p.name for p in audio_parts] == ["audio"] * 4
            assert all(p.content_type == "application/octet-stream" for p in audio_parts)
            assert [len(p.body) for p in audio_parts] == [6400, 6400, 6400, 200]

    run(main())


async def _answer(status: int, messages: list[Message]) -> tuple[int, list[Message]]:
    return status, messages


def test_handlers_run_in_order_with_attachment_and_unknown_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """B-MQ-01/02, B-MP-08 (attachment before its directive), B-UN-01, B-SR-09."""

    async def main() -> None:
        async with FakeCIC() as fake, client_for(fake) as client:
            calls: list[tuple[str, Any]] = []

            async def on_speak(item: QueuedDirective) -> None:
                await asyncio.sleep(0.05)  # a slow handler must not reorder the queue
                att = item.attachment(item.directive.payload["url"])
                calls.append(("speak", att.data if att else None))

            client.on("SpeechSynthesizer.Speak", on_speak)
            client.on("Clova.RenderText", lambda item: calls.append(("render", None)))
            with caplog.at_level(logging.INFO, logger="opencic.client"):
                response = await client.recognize_text("what time is it")
                await client.wait_idle(5)
            assert response.status == 200
            assert [d.qualified_name for d in response.directives] == [
                "SpeechSynthesizer.Speak", "Acme.Frobnicate", "Clova.RenderText"]
            assert response.attachment("cid:tts-1") is not None
            assert calls == [("speak", b"\xff\xfb\x90\x00fake-mp3"), ("render", None)]
            unknown = [r for r in caplog.records if "Acme.Frobnicate" in r.getMessage()]
            assert len(unknown) == 1 and "unknown directive ignored" in unknown[0].getMessage()
            assert client.latest_dialog_request_id == response.directives[0].dialog_request_id

    run(main())


def test_stale_and_background_directives_on_downchannel() -> None:
    """B-DI-04 (other dialogue dropped), B-DI-05 (no ID handled at once)."""

    async def main() -> None:
        async with FakeCIC() as fake, client_for(fake) as client:
            seen: list[str] = []
            client.on("*", lambda item: seen.append(item.directive.payload.get("text", "")))
            await client.recognize_text("first")
            await client.wait_idle(5)
            seen.clear()
            fake.current.push(
                Directive.create("Clova", "RenderText", {"text": "stale"}, dialog_request_id="old"),
                Directive.create("Notifier", "SetIndicator", {"text": "bg"}),
                Directive.create("Clova", "RenderText", {"text": "current"},
                                 dialog_request_id=client.latest_dialog_request_id),
            )
            await asyncio.sleep(0.2)
            await client.wait_idle(5)
            assert sorted(seen) == ["bg", "current"]

    run(main())


def test_error_response_is_returned_with_description_and_keeps_dialogue() -> None:
    """B-ST-01, B-DI-06: a failed request leaves the latest dialogue ID alone."""

    async def main() -> None:
        async with FakeCIC() as fake, client_for(fake) as client:
            await client.recognize_text("ok")
            latest = client.latest_dialog_request_id
            fake.on_event = lambda req: _answer(400, [system_exception(400, "bad text")])
            response = await client.recognize_text("broken")
            assert response.status == 400 and response.description == "bad text"
            assert client.latest_dialog_request_id == latest
            fake.on_event = lambda req: _answer(401, [system_exception(401, "token expired")])
            response = await client.recognize_text("again")
            with pytest.raises(AuthenticationFailed):
                response.raise_for_status()

    run(main())


def test_412_reopens_downchannel_and_resends_once() -> None:
    """B-EV-10 (with audio: the resend repeats the parts already sent)."""
    answers = [412, 200]

    async def on_event(req: Request) -> tuple[int, list[Message]]:
        status = answers.pop(0)
        if status == 412:
            return 412, [system_exception(412, "no downchannel")]
        return 204, []

    async def audio() -> AsyncIterator[bytes]:
        for i in range(3):
            yield bytes([i]) * 6400

    async def main() -> None:
        async with FakeCIC() as fake, client_for(fake) as client:
            fake.on_event = on_event
            response = await client.recognize_speech(audio())
            assert response.status == 204
            events = fake.paths("/v1/events")
            assert len(events) == 2
            assert [len(p.body) for p in events[1].parts()[1:]] == [6400, 6400, 6400]
            assert len(fake.paths("/v1/directives")) == 2
            assert client.is_connected

    run(main())


def test_reconnects_when_downchannel_ends_or_is_replaced() -> None:
    """B-DC-07 (same connection kept, B-CN-02), B-DC-04."""

    async def main() -> None:
        async with FakeCIC() as fake, client_for(fake) as client:
            fake.current.end_downchannel()
            await asyncio.sleep(0.5)
            await client.wait_connected(5)
            assert len(fake.paths("/v1/directives")) == 2
            assert len(fake.conns) == 1  # the connection survived; only the stream was new
            response = await client.recognize_text("still there?")
            assert response.status == 200

    run(main())


def test_reconnects_with_new_connection_when_ping_unanswered() -> None:
    """B-KA-01: no PING ACK -> new connection and downchannel."""

    async def main() -> None:
        async with FakeCIC() as fake:
            client = client_for(fake, ping_interval=0.2, ping_timeout=0.2)
            async with client:
                fake.answer_pings = False
                await asyncio.sleep(0.6)
                fake.answer_pings = True
                for _ in range(50):
                    if client.is_connected and len(fake.conns) >= 2:
                        break
                    await asyncio.sleep(0.1)
                assert len(fake.conns) >= 2
                assert client.downchannels_opened >= 2
                assert (await client.recognize_text("hello")).status == 200

    run(main())


def test_stop_capture_ends_audio_upload() -> None:
    """B-SR-02: StopCapture on the downchannel stops streaming audio at once."""
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            await asyncio.sleep(0.01)
            sent += 1
            yield b"\x00" * 6400

    async def main() -> None:
        async with FakeCIC() as fake, client_for(fake) as client:
            pushed = False

            def on_data(req: Request) -> None:
                nonlocal pushed
                if req.path == "/v1/events" and len(req.body) > 20_000 and not pushed:
                    pushed = True
                    dialog = json.loads(bytes(req.body).split(b"\r\n\r\n", 1)[1].split(b"\r\n--")[0])
                    dialog_id = dialog["event"]["header"]["dialogRequestId"]
                    fake.current.push(Directive.create(
                        "SpeechRecognizer", "StopCapture", {}, dialog_request_id=dialog_id))

            fake.on_data = on_data
            fake.on_event = lambda req: _answer(204, [])
            response = await client.recognize_speech(endless())
            assert response.status == 204 and pushed
            assert sent < 30

    run(main())


def test_connect_raises_on_401_downchannel() -> None:
    """B-CN-04 surfaced to the application."""

    async def main() -> None:
        async with FakeCIC() as fake:
            fake.downchannel_status = 401
            client = client_for(fake)
            with pytest.raises(AuthenticationFailed) as info:
                await client.connect()
            assert info.value.description == "refused by the fake"

    run(main())


def test_event_response_helpers() -> None:
    response = EventResponse(500, description="boom")
    assert not response.is_success
    with pytest.raises(Exception, match="boom"):
        response.raise_for_status()


def test_speech_output_pause_order_and_reports() -> None:
    """B-SR-08 (order, x-clova-pause-before), B-SR-09 (cid vs URL), B-SR-10 (reports)."""
    from opencic.client import SpeechItem, SpeechOutput, default_context
    from opencic.protocol.messages import Attachment

    async def on_event(req: Request) -> tuple[int, list[Message]]:
        doc = json.loads(req.parts()[0].body)
        if doc["event"]["header"]["namespace"] == "SpeechSynthesizer":
            return 204, []
        dialog = doc["event"]["header"]["dialogRequestId"]
        first = Directive.create("SpeechSynthesizer", "Speak",
                                 {"token": "a", "format": "AUDIO_MPEG", "url": "cid:A",
                                  "x-clova-pause-before": 150}, dialog_request_id=dialog)
        second = Directive.create("SpeechSynthesizer", "Speak",
                                  {"token": "b", "format": "AUDIO_MPEG",
                                   "url": "https://tts.example/b.mp3"}, dialog_request_id=dialog)
        return 200, [first, second, Attachment("A", b"mp3-a")]

    async def main() -> None:
        async with FakeCIC() as fake:
            fake.on_event = on_event
            played: list[tuple[str, bytes | None, str, float]] = []
            outputs: list[SpeechOutput] = []
            client = client_for(
                fake, context_provider=lambda: [*default_context(), *(o.context() for o in outputs)])
            loop = asyncio.get_running_loop()
            started = loop.time()

            async def play(item: SpeechItem) -> None:
                data = item.attachment.data if item.attachment else None
                played.append((item.token, data, item.url, loop.time() - started))

            outputs.append(SpeechOutput(client, play))
            async with client:
                await client.recognize_text("two speaks")
                await client.wait_idle(5)
            assert [(t, d, u) for t, d, u, _ in played] == [
                ("a", b"mp3-a", "cid:A"), ("b", None, "https://tts.example/b.mp3")]
            assert played[0][3] >= 0.15  # waited x-clova-pause-before
            reports = []
            for req in fake.paths("/v1/events")[1:]:
                doc = json.loads(req.parts()[0].body)
                state = next(c["payload"] for c in doc["context"]
                             if c["header"]["name"] == "SpeechState")
                reports.append((doc["event"]["header"]["name"], doc["event"]["payload"]["token"],
                                state["playerActivity"]))
                assert "dialogRequestId" not in doc["event"]["header"]  # B-EV-06
            assert reports == [("SpeechStarted", "a", "PLAYING"), ("SpeechFinished", "a", "FINISHED"),
                               ("SpeechStarted", "b", "PLAYING"), ("SpeechFinished", "b", "FINISHED")]

    run(main())


def test_speech_output_stop_reports_speech_stopped() -> None:
    """B-SR-10: an interrupted Speak is reported with SpeechStopped."""
    from opencic.client import SpeechItem, SpeechOutput

    async def on_event(req: Request) -> tuple[int, list[Message]]:
        doc = json.loads(req.parts()[0].body)
        if doc["event"]["header"]["namespace"] == "SpeechSynthesizer":
            return 204, []  # not another Speak for every report
        return await hello_time(req)

    async def main() -> None:
        async with FakeCIC() as fake:
            fake.on_event = on_event
            client = client_for(fake)
            playing = asyncio.Event()

            async def play(item: SpeechItem) -> None:
                playing.set()
                await asyncio.sleep(30)

            speech = SpeechOutput(client, play)
            async with client:
                await client.recognize_text("long answer")
                await asyncio.wait_for(playing.wait(), 5)
                speech.stop()
                await client.wait_idle(5)
                names = [json.loads(r.parts()[0].body)["event"]["header"]["name"]
                         for r in fake.paths("/v1/events")]
                assert names[-2:] == ["SpeechStarted", "SpeechStopped"]
                assert speech.context().payload["playerActivity"] == "STOPPED"

    run(main())
