"""The client SDK and the device simulator against the real ``opencic serve`` process.

Uses the ``cic_server`` fixture of tests/conftest.py (h2c, ephemeral port).
One TLS server is started here to cover ALPN h2
and trusting the self-signed certificate in ``<data-dir>/tls/cert.pem``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import miniaudio
import pytest
from support.server import ServerHandle, serving

from opencic.client import Backoff, CICClient, QueuedDirective

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(cic_server: ServerHandle) -> ServerHandle:
    return cic_server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with serving(tmp_path_factory.mktemp("cic-tls"), tls=True) as handle:
        yield handle


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def device_id() -> str:
    return f"sdk-{uuid.uuid4().hex[:10]}"


def test_connect_receives_hello(server: Any) -> None:
    """B-CN-06, B-DC-01/02."""

    async def main() -> None:
        client = CICClient(server.url, server.create_token(device_id()))
        hellos: list[QueuedDirective] = []
        client.on("Clova.Hello", hellos.append)
        async with client:
            assert client.is_connected
            await client.wait_idle(5)
            assert len(hellos) == 1
            assert hellos[0].directive.dialog_request_id is None
            assert str(hellos[0].source).startswith("downchannel")

    run(main())


def test_recognize_text_speak_and_render_in_order(server: Any) -> None:
    """B-DI-01/02, B-MQ-01/02, B-MP-08, B-SR-08/09: handlers in order, MP3 resolved."""

    async def main() -> None:
        async with CICClient(server.url, server.create_token(device_id())) as client:
            calls: list[tuple[str, str | None]] = []
            audio: list[bytes] = []

            async def on_speak(item: QueuedDirective) -> None:
                attachment = item.attachment(item.directive.payload["url"])
                assert attachment is not None, item.missing
                audio.append(attachment.data)
                calls.append((item.directive.qualified_name, item.directive.dialog_request_id))

            def on_render(item: QueuedDirective) -> None:
                calls.append((item.directive.qualified_name, item.directive.dialog_request_id))

            client.on("SpeechSynthesizer.Speak", on_speak)
            client.on("Clova.RenderText", on_render)
            response = await client.recognize_text("what time is it")
            assert response.status == 200, response.description
            await client.wait_idle(10)

            dialog = client.latest_dialog_request_id
            assert dialog is not None
            names = [d.qualified_name for d in response.directives]
            assert "SpeechSynthesizer.Speak" in names and "Clova.RenderText" in names
            expected = [(n, dialog) for n in names
                        if n in ("SpeechSynthesizer.Speak", "Clova.RenderText")]
            assert calls == expected
            speak = next(d for d in response.directives if d.qualified_name == "SpeechSynthesizer.Speak")
            assert speak.payload["url"].startswith("cid:")
            assert response.attachment(speak.payload["url"]) is not None
            decoded = miniaudio.decode(audio[0])
            assert decoded.sample_rate > 0 and len(decoded.samples) > 1000

    run(main())


def test_second_downchannel_replaces_first_which_reconnects(server: Any) -> None:
    """B-DC-04 on the server, B-DC-07 on the client."""

    async def main() -> None:
        token = server.create_token(device_id())
        first = CICClient(server.url, token, backoff=Backoff(initial=0.25, maximum=2.0))
        second = CICClient(server.url, token, auto_reconnect=False)
        async with first:
            assert first.downchannels_opened == 1
            async with second:
                # The server closes first's downchannel; first opens a new one, which in
                # turn replaces second's (which does not come back: auto_reconnect off).
                for _ in range(200):
                    if first.downchannels_opened >= 2 and first.is_connected:
                        break
                    await asyncio.sleep(0.1)
                assert first.downchannels_opened >= 2
                await first.wait_connected(10)
                response = await first.recognize_text("what time is it")
                assert response.status == 200, response.description

    run(main())


def test_ping_http2_and_get_ping(server: Any) -> None:
    """B-KA-01 (HTTP/2 PING ACK) and B-KA-02/03 (GET /ping -> 204)."""

    async def main() -> None:
        async with CICClient(server.url, server.create_token(device_id()),
                             ping_interval=0.3) as client:
            rtt = await client.ping()
            assert 0 <= rtt < 5
            await asyncio.sleep(1.0)  # a few automatic keep-alives
            assert client.is_connected and client.downchannels_opened == 1
            client.keepalive = "get"
            assert await client.ping() < 5

    run(main())


def test_bad_token_is_surfaced(server: Any) -> None:
    """B-CN-04 -> AuthenticationFailed with the System.Exception description."""
    from opencic.client import AuthenticationFailed

    async def main() -> None:
        with pytest.raises(AuthenticationFailed) as info:
            async with CICClient(server.url, "not-a-token"):
                pass
        assert info.value.status == 401 and info.value.description

    run(main())


def test_tls_with_self_signed_certificate(tls_server: Any) -> None:
    """ALPN h2 over TLS, trusting <data-dir>/tls/cert.pem."""

    async def main() -> None:
        token = tls_server.create_token(device_id())
        async with CICClient(tls_server.url, token, cafile=tls_server.cafile) as client:
            response = await client.recognize_text("what time is it")
            assert response.status == 200

    run(main())


def test_speech_output_reports_are_accepted(server: Any) -> None:
    """B-SR-10: SpeechStarted/SpeechFinished for the Speak played, answered 2xx."""
    from opencic.client import SpeechItem, SpeechOutput

    async def main() -> None:
        async with CICClient(server.url, server.create_token(device_id())) as client:
            played: list[SpeechItem] = []

            async def play(item: SpeechItem) -> None:
                played.append(item)

            speech = SpeechOutput(client, play)
            await client.recognize_text("what time is it")
            await client.wait_idle(10)
            assert len(played) == 1 and played[0].attachment is not None
            assert speech.context().payload == {"token": played[0].token,
                                                "playerActivity": "FINISHED"}
            for name in ("SpeechStarted", "SpeechFinished", "SpeechStopped"):
                event = client.create_event("SpeechSynthesizer", name, {"token": played[0].token})
                response = await client.send_event(event)
                assert response.is_success, (name, response.status, response.description)

    run(main())


# ------------------------------------------------------------------ the CLI


def _device_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opencic.cli.main", "device", *args],
        input=stdin, capture_output=True, text=True, timeout=90, cwd=REPO, check=False,
    )


def test_cli_text_prints_directives_and_saves_mp3(server: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _device_cli("--server", server.url, "--token", server.create_token(device_id()),
                       "--text", "what time is it", "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "SpeechSynthesizer.Speak dialogRequestId=" in proc.stdout
    assert "Clova.RenderText dialogRequestId=" in proc.stdout
    assert f"saved {out / 'speak-1.mp3'}" in proc.stdout
    assert miniaudio.decode((out / "speak-1.mp3").read_bytes()).sample_rate > 0


def test_cli_interactive_piped_and_token_from_data_dir(server: Any, tmp_path: Path) -> None:
    proc = _device_cli("--server", server.url, "--data-dir", str(server.data_dir),
                       "--device-id", device_id(), "--out-dir", str(tmp_path),
                       stdin="what time is it\n\nhello\nquit\nnot sent\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Clova.RenderText") == 2
    assert (tmp_path / "speak-2.mp3").exists()


def test_cli_sets_a_timer_like_a_device(server: Any, tmp_path: Path) -> None:
    """The simulator answers SetAlert itself (B-AL-02), so the confirmation follows."""
    proc = _device_cli("--server", server.url, "--token", server.create_token(device_id()),
                       "--text", "set a timer for 3 minutes", "--out-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    order = [n for line in lines for n in ("Alerts.SetAlert", "SpeechSynthesizer.Speak",
                                           "Clova.RenderTemplate") if line.startswith(n)]
    assert order == ["Alerts.SetAlert", "SpeechSynthesizer.Speak", "Clova.RenderTemplate"]
    assert '"type": "Timer"' in proc.stdout


def test_cli_exit_codes(server: Any) -> None:
    bad = _device_cli("--server", server.url, "--token", "nope", "--text", "hi")
    assert bad.returncode == 1
    assert "401" in bad.stderr
    usage = _device_cli("--server", server.url, "--text", "hi")
    assert usage.returncode == 2


def test_cli_tls_trusts_data_dir_certificate(tls_server: Any, tmp_path: Path) -> None:
    proc = _device_cli("--server", tls_server.url, "--data-dir", str(tls_server.data_dir),
                       "--device-id", device_id(), "--text", "what time is it",
                       "--out-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "speak-1.mp3").exists()


def test_connect_waits_out_a_429(server: Any) -> None:
    """B-DC-05: two downchannels just opened for this device, so a third within 5 s gets
    429; the SDK waits and connects instead of failing."""
    from support.cic import open_downchannel

    token = server.create_token(device_id())

    async def main() -> None:
        raw = await server.connect()
        try:
            await open_downchannel(raw, token)
            await open_downchannel(raw, token)  # replaces the first (B-DC-04)
            started = asyncio.get_running_loop().time()
            async with CICClient(server.url, token) as client:
                assert client.is_connected
            assert asyncio.get_running_loop().time() - started >= 0.9  # it waited
        finally:
            await raw.close()

    run(main())
