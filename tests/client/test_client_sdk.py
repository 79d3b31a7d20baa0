"""CICClient against the real ``opencic serve``.

Network faults (swallowed PINGs, a lost link) come from a real loopback TCP proxy
(``support.faultproxy``) between client and server; the same proxy shows what the
client really put on the wire (headers, event bodies, speech reports). A real 412 comes
from moving the device's downchannel to another connection (B-DC-04), a GOAWAY from
stopping the server. StopCapture mid-upload (B-SR-02) is tested once the server does
voice recognition (it sends no StopCapture before that).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cic import auth_headers
from support.faultproxy import FaultProxy, Link, WireRequest
from support.server import ServerHandle, serving, start_server, stop_server

from opencic.client import (
    AuthenticationFailed,
    Backoff,
    CICClient,
    EventResponse,
    QueuedDirective,
    SpeechItem,
    SpeechOutput,
    default_context,
)
from opencic.client.exchange import ReplayableAudio
from opencic.client.models import rechunk
from opencic.client.queues import normalize_cid
from opencic.protocol.ids import new_id
from opencic.protocol.messages import Attachment, Directive
from opencic.protocol.multipart import Part, collect_parts
from opencic.protocol.user_agent import parse_user_agent

# More downchannel requests per device than B-DC-05's default 2 per 5 s: the 412 and
# replacement tests open three in a row on purpose.
BUSY_ENV = {"OPENCIC_DOWNCHANNEL_MAX_REQUESTS": "10"}

SET_INDICATOR = {
    "namespace": "Notifier", "name": "SetIndicator",
    "payload": {"assets": [{"assetId": "a1", "url": "clova://notifier/sound/default"}],
                "assetPlayOrder": ["a1"], "light": "DEFAULT", "new": True},
}
CLEAR_INDICATOR = {"namespace": "Notifier", "name": "ClearIndicator", "payload": {}}


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with serving(tmp_path_factory.mktemp("cic-busy"), env=BUSY_ENV) as handle:
        yield handle


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def device_id() -> str:
    return f"sdk-{uuid.uuid4().hex[:10]}"


def fast_backoff() -> Backoff:
    return Backoff(initial=0.05, maximum=0.2)


async def eventually(check: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def server_log(server: ServerHandle, device: str, msg: str = "request") -> list[dict[str, Any]]:
    """The server's JSON log records with this message about ``device``."""
    out = []
    for line in server.log_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("msg") == msg and record.get("device") == device:
                out.append(record)
    return out


def logged(server: ServerHandle, device: str, path: str) -> list[int]:
    """Statuses of the requests the server logged for ``device`` on ``path``."""
    return [r["status"] for r in server_log(server, device) if r["path"] == path]


def parts_of(request: WireRequest) -> list[Part]:
    return collect_parts(bytes(request.body), request.headers["content-type"])


def events_sent(link: Link) -> list[dict[str, Any]]:
    """The metadata JSON of every complete POST /v1/events the client sent on ``link``."""
    return [json.loads(parts_of(r)[0].body) for r in link.requests()
            if r.path == "/v1/events" and r.ended]


async def steal_downchannel(server: ServerHandle, token: str) -> Any:
    """Open the device's downchannel on another connection: the server ends the
    client's downchannel (B-DC-04). Returns that other connection."""
    thief = await server.connect()
    sid = await thief.start("GET", "/v1/directives", auth_headers(token), end=True)
    await thief.wait(sid, lambda s: b"Hello" in s.body, timeout=10)
    return thief


# ------------------------------------------------------------------ connecting, headers


def test_connect_waits_for_hello_and_sends_auth_and_user_agent_everywhere(
    cic_server: ServerHandle,
) -> None:
    """B-CN-03, B-CN-06, B-DC-01, B-UA-01: checked on the wire and on the server."""
    device = device_id()

    async def main() -> None:
        token = cic_server.create_token(device)
        async with FaultProxy(cic_server.host, cic_server.port) as proxy:
            client = CICClient(proxy.url, token, backoff=fast_backoff())
            hellos: list[QueuedDirective] = []
            client.on("Clova.Hello", hellos.append)
            async with client:
                assert client.is_connected  # connect() returned only after Clova.Hello
                await client.wait_idle(5)
                assert len(hellos) == 1
                assert (await client.recognize_text("what time is it")).status == 200
                await client.ping()  # HTTP/2 PING: a frame, not a request
                client.keepalive = "get"
                await client.ping()
            requests = proxy.links[0].requests()
            assert proxy.accepted == 1
            assert [(r.method, r.path) for r in requests] == [
                ("GET", "/v1/directives"), ("POST", "/v1/events"), ("GET", "/ping")]
            for request in requests:
                assert request.headers["authorization"] == f"Bearer {token}"
                assert request.headers["user-agent"] == client.user_agent
                assert parse_user_agent(request.headers["user-agent"]) is not None
        # The server authenticated both CIC requests as this device (the downchannel's
        # line is written when it ends) and did not find the User-Agent wanting.
        await eventually(lambda: len(server_log(cic_server, device)) == 2)
        assert sorted((r["path"], r["status"]) for r in server_log(cic_server, device)) == [
            ("/v1/directives", 200), ("/v1/events", 200)]
        assert server_log(cic_server, device, "non-conforming User-Agent") == []

    run(main())


def test_connect_raises_on_401_downchannel(cic_server: ServerHandle) -> None:
    """B-CN-04 surfaced to the application, with the System.Exception description."""

    async def main() -> None:
        client = CICClient(cic_server.url, "not-a-token", backoff=fast_backoff())
        with pytest.raises(AuthenticationFailed) as info:
            await client.connect()
        assert info.value.status == 401
        assert info.value.description == "access token is unknown, revoked or expired"
        assert not client.is_connected

    run(main())


# ------------------------------------------------------------------ event bodies


def test_rechunk_regroups_audio_into_200ms_parts() -> None:
    """B-AU-02: whatever buffers the app yields, parts are 6,400 bytes (the last may be
    short), byte for byte; ReplayableAudio repeats them for a 412 resend (B-EV-10)."""

    async def audio() -> AsyncIterator[bytes]:
        for size in (1000, 9000, 6400, 3000):
            yield bytes([size % 251]) * size

    async def main() -> None:
        expected = b"".join([bytes([s % 251]) * s for s in (1000, 9000, 6400, 3000)])
        parts = [p async for p in rechunk(audio())]
        assert [len(p) for p in parts] == [6400, 6400, 6400, 200]
        assert b"".join(parts) == expected
        replay = ReplayableAudio(audio())
        first = [p async for p in replay.parts()]
        second = [p async for p in replay.parts()]
        assert first == second == parts

    run(main())


def test_event_body_is_form_data_metadata_then_200ms_audio_parts(cic_server: ServerHandle) -> None:
    """B-EV-01, B-EV-05, B-MP-05, B-AU-02 as sent on the wire; the server parses it."""
    device = device_id()
    sizes = (1000, 9000, 6400, 3000)  # 19,400 bytes in odd buffers

    async def audio() -> AsyncIterator[bytes]:
        for size in sizes:
            yield bytes([size % 251]) * size

    async def main() -> None:
        async with FaultProxy(cic_server.host, cic_server.port) as proxy:
            async with CICClient(proxy.url, cic_server.create_token(device)) as client:
                response = await client.recognize_speech(audio(), lang="en")
            # Constant samples are no speech: the server says it heard nothing.
            assert response.status == 200
            assert response.directives[-1].payload["text"] == "Sorry, I didn't hear anything."
            post = next(r for r in proxy.links[0].requests() if r.path == "/v1/events")
        assert post.ended
        assert post.headers["content-type"].startswith("multipart/form-data; boundary=")
        parts = parts_of(post)
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
        assert b"".join(p.body for p in audio_parts) == b"".join(
            bytes([s % 251]) * s for s in sizes)
        await eventually(lambda: logged(cic_server, device, "/v1/events") == [200])
        event_line = next(r for r in server_log(cic_server, device) if r["path"] == "/v1/events")
        assert event_line["dialogRequestId"] == header["dialogRequestId"]
        assert server_log(cic_server, device, "inbound event departs from its schema") == []

    run(main())


# ------------------------------------------------------------------ directives


def test_handlers_run_one_at_a_time_in_order_with_their_attachment(cic_server: ServerHandle) -> None:
    """B-MQ-01/02, B-MP-08, B-SR-09: a slow Speak handler does not let RenderText pass."""

    async def main() -> None:
        async with CICClient(cic_server.url, cic_server.create_token(device_id())) as client:
            calls: list[tuple[str, bytes | None]] = []

            async def on_speak(item: QueuedDirective) -> None:
                await asyncio.sleep(0.1)
                attachment = item.attachment(item.directive.payload["url"])
                calls.append(("speak", attachment.data if attachment else None))

            client.on("SpeechSynthesizer.Speak", on_speak)
            client.on("Clova.RenderText", lambda item: calls.append(("render", None)))
            response = await client.recognize_text("what time is it")
            await client.wait_idle(10)
        assert response.status == 200
        names = [d.qualified_name for d in response.directives]
        assert names.index("SpeechSynthesizer.Speak") < names.index("Clova.RenderText")
        speak = response.directives[names.index("SpeechSynthesizer.Speak")]
        mp3 = response.attachment(speak.payload["url"])
        assert mp3 is not None and mp3.data
        assert calls == [("speak", mp3.data), ("render", None)]
        assert client.latest_dialog_request_id == speak.dialog_request_id

    run(main())


def test_pushed_directive_runs_beside_a_busy_dialogue_and_unhandled_is_ignored(
    cic_server: ServerHandle, caplog: pytest.LogCaptureFixture,
) -> None:
    """B-DI-05 / B-MQ-04: a downchannel directive without dialogRequestId runs at once,
    even while the dialogue lane is busy; B-UN-01: one without a handler is logged and
    ignored. The directives are pushed through the server's operator API."""
    device = device_id()

    async def main() -> None:
        admin_token = (cic_server.data_dir / "admin.token").read_text().strip()
        async with CICClient(cic_server.url, cic_server.create_token(device)) as client:
            speaking = asyncio.Event()
            indicated = asyncio.Event()
            seen: list[tuple[str, str | None, str]] = []

            async def on_speak(item: QueuedDirective) -> None:
                speaking.set()
                await asyncio.wait_for(indicated.wait(), 10)  # a deadlock if lanes were one
                seen.append(("Speak", item.directive.dialog_request_id, str(item.source)))

            def on_indicator(item: QueuedDirective) -> None:
                seen.append(("SetIndicator", item.directive.dialog_request_id, str(item.source)))
                indicated.set()

            client.on("SpeechSynthesizer.Speak", on_speak)
            client.on("Notifier.SetIndicator", on_indicator)
            with caplog.at_level(logging.INFO, logger="opencic.client"):
                response = await client.recognize_text("what time is it")
                await asyncio.wait_for(speaking.wait(), 10)
                admin = await cic_server.connect()
                try:
                    push = {"devices": [device], "directives": [SET_INDICATOR, CLEAR_INDICATOR]}
                    answer = await admin.request(
                        "POST", "/admin/v1/push",
                        {"authorization": f"Bearer {admin_token}",
                         "content-type": "application/json"},
                        json.dumps(push).encode())
                finally:
                    await admin.close()
                assert answer.status == 200, answer.body
                assert json.loads(answer.body) == {"delivered": 1, "offline": [], "queued": []}
                await client.wait_idle(10)
        assert response.status == 200
        assert [s[0] for s in seen] == ["SetIndicator", "Speak"]
        assert seen[0][1] is None and seen[0][2].startswith("downchannel")
        assert seen[1][1] == client.latest_dialog_request_id
        ignored = [r.getMessage() for r in caplog.records
                   if "Notifier.ClearIndicator" in r.getMessage()]
        assert len(ignored) == 1 and "unknown directive ignored" in ignored[0]

    run(main())


def test_error_response_is_returned_with_description_and_keeps_dialogue(
    cic_server: ServerHandle,
) -> None:
    """B-ST-01, B-DI-06: a failed request leaves the latest dialogue ID alone."""
    device = device_id()

    async def main() -> None:
        token = [cic_server.create_token(device)]
        async with CICClient(cic_server.url, lambda: token[0]) as client:
            assert (await client.recognize_text("what time is it")).status == 200
            latest = client.latest_dialog_request_id
            assert latest is not None
            too_long = client.create_event("SpeechSynthesizer", "Request",
                                           {"text": "word " * 300}, dialog_request_id=new_id())
            response = await client.send_event(too_long)
            assert response.status == 400
            assert response.description == "payload.text is longer than 1000 characters"
            assert client.latest_dialog_request_id == latest
            token[0] = "revoked-token"  # the next request carries a token the server refuses
            response = await client.recognize_text("what time is it")
            assert response.status == 401 and response.description
            with pytest.raises(AuthenticationFailed):
                response.raise_for_status()
            assert client.latest_dialog_request_id == latest
        await eventually(lambda: logged(cic_server, device, "/v1/events") == [200, 400])

    run(main())


def test_event_response_helpers() -> None:
    response = EventResponse(500, description="boom")
    assert not response.is_success
    with pytest.raises(Exception, match="boom"):
        response.raise_for_status()
    assert EventResponse(204).raise_for_status().is_success


# ------------------------------------------------------------------ 412, reconnects


def test_412_reopens_downchannel_and_resends_once(busy_server: ServerHandle) -> None:
    """B-EV-10 (with audio: the resend repeats the parts), B-EV-02, B-DC-04.

    The proxy holds the client's traffic while another connection takes over the
    device's downchannel; the client's next event then reaches a server that no longer
    has a downchannel on its connection and really answers 412.
    """
    device = device_id()

    async def audio() -> AsyncIterator[bytes]:
        for i in range(3):
            yield bytes([i + 1]) * 6400

    async def main() -> None:
        token = busy_server.create_token(device)
        async with FaultProxy(busy_server.host, busy_server.port) as proxy:
            client = CICClient(proxy.url, token, backoff=fast_backoff())
            async with client:
                link = proxy.links[0]
                proxy.pause()
                thief = await steal_downchannel(busy_server, token)
                try:
                    sending = asyncio.create_task(client.recognize_speech(audio()))
                    await eventually(lambda: any(r.path == "/v1/events" for r in link.requests()))
                    proxy.resume()
                    response = await asyncio.wait_for(sending, 15)
                finally:
                    await thief.close()
                assert response.status == 200  # "Sorry, I didn't hear anything."
                assert client.is_connected and client.downchannels_opened == 2
                requests = link.requests()
            assert proxy.accepted == 1  # all on the one connection
        assert [r.path for r in requests] == [
            "/v1/directives", "/v1/events", "/v1/directives", "/v1/events"]
        resent = parts_of(requests[3])
        assert [(p.name, p.body) for p in resent[1:]] == [
            ("audio", bytes([i + 1]) * 6400) for i in range(3)]
        await eventually(lambda: logged(busy_server, device, "/v1/events") == [412, 200])

    run(main())


def test_reconnects_on_the_same_connection_when_downchannel_is_replaced(
    busy_server: ServerHandle,
) -> None:
    """B-DC-04 on the server; B-DC-07 and B-CN-02 on the client: a new downchannel on the
    connection it already has."""

    async def main() -> None:
        token = busy_server.create_token(device_id())
        async with FaultProxy(busy_server.host, busy_server.port) as proxy:
            client = CICClient(proxy.url, token, backoff=fast_backoff())
            hellos: list[QueuedDirective] = []
            client.on("Clova.Hello", hellos.append)
            async with client:
                thief = await steal_downchannel(busy_server, token)
                try:
                    await eventually(lambda: client.downchannels_opened == 2 and client.is_connected)
                finally:
                    await thief.close()
                await client.wait_idle(5)
                assert len(hellos) == 2
                assert proxy.accepted == 1
                assert [r.path for r in proxy.links[0].requests()] == ["/v1/directives"] * 2
                assert (await client.send_event(client.create_event(
                    "SpeechSynthesizer", "SpeechFinished", {"token": "t"}))).status == 204

    run(main())


def test_reconnects_with_new_connection_when_pings_are_swallowed(
    cic_server: ServerHandle, caplog: pytest.LogCaptureFixture,
) -> None:
    """B-KA-01: no PING ACK -> a new connection and downchannel, and a new Hello."""

    async def main() -> None:
        async with FaultProxy(cic_server.host, cic_server.port) as proxy:
            client = CICClient(proxy.url, cic_server.create_token(device_id()),
                               ping_interval=0.2, ping_timeout=0.3, backoff=fast_backoff())
            hellos: list[QueuedDirective] = []
            client.on("Clova.Hello", hellos.append)
            with caplog.at_level(logging.WARNING, logger="opencic.client"):
                async with client:
                    proxy.pause()  # the path goes dark: PINGs are never answered
                    await eventually(lambda: not client.is_connected, 5)
                    proxy.resume()
                    await eventually(lambda: client.is_connected, 10)
                    await client.wait_idle(5)
                    assert proxy.accepted >= 2
                    assert client.downchannels_opened >= 2
                    assert len(hellos) == client.downchannels_opened
                    assert (await client.recognize_text("what time is it")).status == 200
        assert any("keep-alive failed" in r.getMessage() for r in caplog.records)

    run(main())


def test_reconnects_with_backoff_after_connection_loss(cic_server: ServerHandle) -> None:
    """B-DC-07: the link drops; the client waits its backoff, reconnects, gets Hello."""

    async def main() -> None:
        async with FaultProxy(cic_server.host, cic_server.port) as proxy:
            client = CICClient(proxy.url, cic_server.create_token(device_id()),
                               backoff=Backoff(initial=0.3, maximum=0.6))
            hellos: list[QueuedDirective] = []
            client.on("Clova.Hello", hellos.append)
            async with client:
                cut_at = asyncio.get_running_loop().time()
                proxy.cut()
                await eventually(lambda: client.downchannels_opened == 2 and client.is_connected)
                await client.wait_idle(5)
                assert len(hellos) == 2
                assert proxy.accepted == 2
                waited = proxy.links[1].accepted_at - cut_at
                assert 0.29 <= waited < 5  # the first backoff step is 0.3 s
                assert (await client.recognize_text("what time is it")).status == 200

    run(main())


@pytest.fixture(scope="module")
def stop_later() -> Iterator[Callable[[ServerHandle], None]]:
    """Stop servers in the background, joined when the module ends: a server stopped
    seconds after its start waits for its start-up speech rendering to finish."""
    threads: list[threading.Thread] = []

    def stop(handle: ServerHandle) -> None:
        thread = threading.Thread(target=stop_server, args=(handle,))
        thread.start()
        threads.append(thread)

    yield stop
    for thread in threads:
        thread.join(30)


def test_reconnects_after_server_restart(tmp_path: Path,
                                         stop_later: Callable[[ServerHandle], None]) -> None:
    """GOAWAY: the server stops; a new one on the same port and data directory comes
    up; the client reconnects by itself (backoff kept small) and gets a new Hello."""
    handles = [start_server(tmp_path / "server")]
    port = handles[0].port

    async def main() -> None:
        first = handles[0]
        client = CICClient(first.url, first.create_token(device_id()),
                           backoff=Backoff(initial=0.1, maximum=0.5))
        hellos: list[QueuedDirective] = []
        client.on("Clova.Hello", hellos.append)
        async with client:
            await asyncio.to_thread(stop_server, first)
            await eventually(lambda: not client.is_connected, 10)
            handles.append(await asyncio.to_thread(start_server, first.data_dir, port=port))
            assert handles[1].port == port
            await eventually(lambda: client.downchannels_opened == 2 and client.is_connected, 15)
            await client.wait_idle(5)
            assert len(hellos) == 2
            response = await client.send_event(client.create_event(
                "SpeechSynthesizer", "SpeechFinished", {"token": "t"}))
            assert response.status == 204  # the same token, kept in the data directory

    try:
        run(main())
    finally:
        for handle in handles:
            stop_later(handle)


# ------------------------------------------------------------------ speech output


def speech_reports(link: Link) -> list[tuple[str, str, str]]:
    """(event name, payload token, SpeechState playerActivity) of each speech report."""
    out = []
    for doc in events_sent(link):
        header = doc["event"]["header"]
        if header["namespace"] != "SpeechSynthesizer":
            continue
        assert "dialogRequestId" not in header  # B-EV-06
        state = next(c["payload"] for c in doc["context"] if c["header"]["name"] == "SpeechState")
        out.append((header["name"], doc["event"]["payload"]["token"], state["playerActivity"]))
    return out


def test_speech_output_reports_carry_the_speak_token(cic_server: ServerHandle) -> None:
    """B-SR-09/10: the real Speak is played from its attachment, then reported with
    SpeechStarted/SpeechFinished carrying its token; the server answers both 204."""
    device = device_id()

    async def main() -> None:
        async with FaultProxy(cic_server.host, cic_server.port) as proxy:
            outputs: list[SpeechOutput] = []
            client = CICClient(
                proxy.url, cic_server.create_token(device),
                context_provider=lambda: [*default_context(), *(o.context() for o in outputs)])
            played: list[SpeechItem] = []

            async def play(item: SpeechItem) -> None:
                played.append(item)

            outputs.append(SpeechOutput(client, play))
            async with client:
                response = await client.recognize_text("what time is it")
                await client.wait_idle(10)
            speak = next(d for d in response.directives
                         if d.qualified_name == "SpeechSynthesizer.Speak")
            token = speak.payload["token"]
            assert token
            mp3 = response.attachment(speak.payload["url"])
            assert [(p.token, p.attachment) for p in played] == [(token, mp3)]
            assert speech_reports(proxy.links[0]) == [("SpeechStarted", token, "PLAYING"),
                                                      ("SpeechFinished", token, "FINISHED")]
            assert outputs[0].context().payload == {"token": token, "playerActivity": "FINISHED"}
        await eventually(lambda: logged(cic_server, device, "/v1/events") == [200, 204, 204])

    run(main())


def test_speech_output_stop_reports_speech_stopped(cic_server: ServerHandle) -> None:
    """B-SR-10: an interrupted Speak is reported with SpeechStopped."""
    device = device_id()

    async def main() -> None:
        async with FaultProxy(cic_server.host, cic_server.port) as proxy:
            outputs: list[SpeechOutput] = []
            client = CICClient(
                proxy.url, cic_server.create_token(device),
                context_provider=lambda: [*default_context(), *(o.context() for o in outputs)])
            playing = asyncio.Event()

            async def play(item: SpeechItem) -> None:
                playing.set()
                await asyncio.sleep(30)

            speech = SpeechOutput(client, play)
            outputs.append(speech)
            async with client:
                response = await client.recognize_text("what time is it")
                await asyncio.wait_for(playing.wait(), 10)
                speech.stop()
                await client.wait_idle(10)
                assert speech.context().payload["playerActivity"] == "STOPPED"
            token = next(d.payload["token"] for d in response.directives
                         if d.qualified_name == "SpeechSynthesizer.Speak")
            assert speech_reports(proxy.links[0]) == [("SpeechStarted", token, "PLAYING"),
                                                      ("SpeechStopped", token, "STOPPED")]
        await eventually(lambda: logged(cic_server, device, "/v1/events") == [200, 204, 204])

    run(main())


def test_speech_output_pause_before_and_url_speak(cic_server: ServerHandle) -> None:
    """B-SR-08 (x-clova-pause-before), B-SR-09 (cid: vs URL), B-SR-10 (reports).

    The server sends neither pauses nor URL Speaks, so the two Speaks are handed to the
    handler directly; their reports go to the real server.
    """

    async def main() -> None:
        async with FaultProxy(cic_server.host, cic_server.port) as proxy:
            outputs: list[SpeechOutput] = []
            client = CICClient(
                proxy.url, cic_server.create_token(device_id()),
                context_provider=lambda: [*default_context(), *(o.context() for o in outputs)])
            loop = asyncio.get_running_loop()
            played: list[tuple[str, bytes | None, str, float]] = []

            async def play(item: SpeechItem) -> None:
                data = item.attachment.data if item.attachment else None
                played.append((item.token, data, item.url, loop.time()))

            outputs.append(SpeechOutput(client, play))
            first = Directive.create("SpeechSynthesizer", "Speak",
                                     {"token": "a", "format": "AUDIO_MPEG", "url": "cid:A",
                                      "x-clova-pause-before": 150})
            second = Directive.create("SpeechSynthesizer", "Speak",
                                      {"token": "b", "format": "AUDIO_MPEG",
                                       "url": "https://tts.example/b.mp3"})
            async with client:
                started = loop.time()
                await outputs[0].handle(QueuedDirective(
                    first, "test", (normalize_cid("A"),),
                    {normalize_cid("A"): Attachment("A", b"mp3-a")}))
                await outputs[0].handle(QueuedDirective(second, "test"))
            assert [(t, d, u) for t, d, u, _ in played] == [
                ("a", b"mp3-a", "cid:A"), ("b", None, "https://tts.example/b.mp3")]
            assert played[0][3] - started >= 0.15  # waited x-clova-pause-before
            assert speech_reports(proxy.links[0]) == [
                ("SpeechStarted", "a", "PLAYING"), ("SpeechFinished", "a", "FINISHED"),
                ("SpeechStarted", "b", "PLAYING"), ("SpeechFinished", "b", "FINISHED")]

    run(main())
