"""``opencic device``: a device simulator built on the client SDK.

One-shot::

    opencic device --server http://127.0.0.1:8080 --token T --text "what time is it"

prints every directive (``Namespace.Name``, dialogRequestId, payload JSON) and saves
each Speak MP3 attachment as ``<out-dir>/speak-<n>.mp3`` ("playing" it: the simulator
reports SpeechStarted/SpeechFinished like a device, B-SR-10). Without ``--text`` it reads
requests line by line from stdin (``quit`` ends; piped input works too) and keeps the
downchannel open, printing pushed directives as they arrive.

Voice::

    opencic device --server http://127.0.0.1:8080 --token T --wav request.wav

streams the WAV (any rate/channels, converted to 16 kHz L16 mono) as
SpeechRecognizer.Recognize in 200 ms parts in real time (``--speed 4`` for 4x, ``0``
for no pacing), stops at StopCapture, and prints each directive with the time since the
upload began (StopCapture arrives on the downchannel, the answer in the response).

Authorised like a real device, through the auth API (see :mod:`.device_auth`)::

    opencic device --auth-file kitchen.json --client-id ID --client-secret S \
        --device-id kitchen --code CODE --text "hello"      # first run: exchange a code
    opencic device --auth-file kitchen.json --client-secret S --text "hello"   # later

Exit codes: 0 ok, 1 a request (or the connection, or the auth API) failed, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..client import (
    CICClient,
    ClientError,
    QueuedDirective,
    RequestFailed,
    SpeechItem,
    SpeechOutput,
    TokenFileError,
    TransportError,
    build_user_agent,
    default_context,
)
from ..client.alerts import DIRECTIVES as ALERT_DIRECTIVES
from ..client.alerts import DeviceAlerts
from . import device_auth

DEFAULT_SERVER = "https://127.0.0.1:8443"
TOKEN_TTL_SECONDS = 24 * 3600


def add_parser(subparsers: Any) -> None:
    """Register the ``device`` subcommand on an argparse subparsers object."""
    p = subparsers.add_parser(
        "device",
        help="simulate a CIC device (text requests, downchannel, Speak MP3s)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--server", default=DEFAULT_SERVER,
                   help=f"CIC base URL; http:// means cleartext h2c (default {DEFAULT_SERVER})")
    p.add_argument("--token", help="bearer token of the device")
    p.add_argument("--data-dir", type=Path,
                   help="server data dir: with --device-id a token is created there; its "
                        "tls/cert.pem is trusted for https")
    p.add_argument("--device-id",
                   help="the device: with --data-dir a development token is created for it; "
                        "with --auth-file it is the device_id to authorise")
    p.add_argument("--insecure", action="store_true",
                   help="do not verify the server certificate (development only)")
    p.add_argument("--cafile", help="CA/certificate file to trust for https")
    p.add_argument("--text", help="send this text request (TextRecognizer.Recognize) and exit")
    p.add_argument("--wav", type=Path,
                   help="send this WAV file as a voice request (SpeechRecognizer.Recognize) "
                        "and exit")
    p.add_argument("--mic", action="store_true",
                   help="speak a voice request into the microphone (stops at StopCapture)")
    p.add_argument("--mic-device", help="with --mic: capture device name (default: the "
                                        "system's default; --mic-device list shows them)")
    p.add_argument("--mic-seconds", type=float, default=15.0,
                   help="with --mic: longest recording if StopCapture never comes (default 15)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="with --wav: audio pacing, 1 = real time (default), 0 = unpaced")
    p.add_argument("--lang", default="en", help="with --wav: the Recognize lang (default en)")
    p.add_argument("--out-dir", type=Path, default=Path("opencic-out"),
                   help="where Speak MP3 attachments are written (default ./opencic-out)")
    p.add_argument("--user-agent", default=build_user_agent(),
                   help="User-Agent (B-UA-02 format)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for a response (default 60)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log SDK activity to stderr (-vv for debug)")
    device_auth.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.mic_device == "list":
        from ..client.microphone import MicrophoneUnavailable, capture_devices

        try:
            names = capture_devices()
        except MicrophoneUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print("\n".join(names) if names else "(no capture devices)")
        return 0
    if sum(bool(x) for x in (args.text is not None, args.wav is not None, args.mic)) > 1:
        print("opencic device: choose one of --text, --wav and --mic", file=sys.stderr)
        return 2
    if args.mic_seconds <= 0:
        print("opencic device: --mic-seconds must be positive", file=sys.stderr)
        return 2
    cafile = args.cafile
    if cafile is None and args.data_dir is not None and args.server.startswith("https:"):
        default_cert = args.data_dir / "tls" / "cert.pem"
        if default_cert.exists():
            cafile = str(default_cert)
    token: Any
    args.device_auth = None
    if device_auth.wanted(args):
        try:
            auth = device_auth.DeviceAuth(args, cafile)
        except device_auth.UsageError as exc:
            print(f"opencic device: {exc}", file=sys.stderr)
            return 2
        except TokenFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if auth.logout:
            return auth.run_logout()
        args.device_auth = auth
        token = auth.manager  # refreshed before expiry and on 401 (B-CN-05)
    else:
        token = _resolve_token(args)
        if token is None:
            return 2
    speech: list[SpeechOutput] = []  # created with the client; feeds its context
    # The device keeps, rings and reports the alerts it is sent (B-AL-02..13).
    alerts = DeviceAlerts(on_ring=lambda a: print(f"(ringing) {a['type']} token={a['token']}",
                                                  flush=True))
    args.alerts = alerts
    try:
        client = CICClient(
            args.server,
            token,
            user_agent=args.user_agent,
            cafile=cafile,
            insecure=args.insecure,
            request_timeout=args.timeout,
            context_provider=lambda: [*default_context(), *(s.context() for s in speech),
                                      alerts.context()],
        )
    except (ValueError, OSError) as exc:
        print(f"opencic device: {exc}", file=sys.stderr)
        return 2
    printer = _Printer(args.out_dir)
    args.printer = printer
    client.on("SpeechSynthesizer.Speak", printer.describe)
    speech.append(SpeechOutput(client, printer.save))
    for name in ALERT_DIRECTIVES:
        client.on(name, printer.describe)
    alerts.attach(client)
    client.on("*", printer.describe)
    try:
        return asyncio.run(_main(client, args))
    except KeyboardInterrupt:
        return 130


def _resolve_token(args: argparse.Namespace) -> str | None:
    if args.token:
        return str(args.token)
    if args.data_dir is None or args.device_id is None:
        print("opencic device: give --token, --auth-file (the auth API), or --data-dir with "
              "--device-id", file=sys.stderr)
        return None
    try:
        from ..config import load_settings
        from ..state import StateError
        from ..state.store import create_store
    except ImportError:
        print("opencic device: token creation is unavailable; use --token", file=sys.stderr)
        return None
    # The server's own settings (OPENCIC_DATABASE, <data-dir>/opencic.toml) say where
    # its tokens live.
    settings = load_settings(overrides={"data_dir": args.data_dir})

    async def create() -> str:
        async with create_store(settings.database, settings.data_dir) as store:
            await store.devices.ensure([args.device_id])
            return (await store.tokens.issue(args.device_id, ttl=TOKEN_TTL_SECONDS)).access_token

    try:
        return asyncio.run(create())
    except (ValueError, StateError, ConnectionError, OSError) as exc:
        print(f"opencic device: {exc}", file=sys.stderr)
        return None


class _Printer:
    """Prints directives and saves Speak attachments (SDK handlers)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.speaks = 0
        self.started: float | None = None  # a voice upload began: print timings

    def describe(self, item: QueuedDirective) -> None:
        directive = item.directive
        where = "(downchannel) " if str(item.source).startswith("downchannel") else ""
        payload = json.dumps(directive.payload, ensure_ascii=False, sort_keys=True)
        if self.started is not None:
            where = f"[+{time.perf_counter() - self.started:.3f}s] {where}"
        print(f"{where}{directive.qualified_name} dialogRequestId="
              f"{directive.dialog_request_id or '-'} {payload}", flush=True)

    async def save(self, item: SpeechItem) -> None:
        """The simulator's "loudspeaker": write the MP3 to a file."""
        attachment = item.attachment
        if attachment is None:
            print(f"  (remote TTS URL, not downloaded: {item.url})", flush=True)
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # Continue the numbering of earlier runs instead of overwriting their files.
        while True:
            self.speaks += 1
            path = self.out_dir / f"speak-{self.speaks}.mp3"
            if not path.exists():
                break
        path.write_bytes(attachment.data)
        print(f"  saved {path} ({len(attachment.data)} bytes)", flush=True)


async def _main(client: CICClient, args: argparse.Namespace) -> int:
    auth: device_auth.DeviceAuth | None = args.device_auth
    try:
        if auth is not None and auth.obtain:
            await auth.authorise()
        await client.connect()
    except RequestFailed as exc:
        print(f"error: downchannel refused: HTTP {exc.status}: {exc.description}", file=sys.stderr)
        return 1
    except (ClientError, OSError) as exc:
        # The auth API's refusals and an unusable token file, in words one can act on.
        status = device_auth.report(exc, auth.path if auth is not None else None)
        if status is not None:
            await client.aclose()
            return status
        if not isinstance(exc, TransportError | OSError):
            raise
        print(f"error: cannot connect to {args.server}: {exc}", file=sys.stderr)
        return 1
    try:
        if args.wav is not None or args.mic:
            return await _voice_request(client, args)
        if args.text is not None:
            return await _request(client, args.text, args.timeout)
        await args.alerts.synchronize()  # B-AL-13: a device that (re)connects
        return await _interactive(client, args.timeout)
    finally:
        args.alerts.close()
        await client.aclose()


async def _request(client: CICClient, text: str, timeout: float) -> int:
    try:
        response = await client.recognize_text(text)
    except (ClientError, TimeoutError) as exc:
        print(f"error: request failed: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    if not response.is_success:
        print(f"error: HTTP {response.status}: {response.description or 'no description'}",
              file=sys.stderr)
        return 1
    if response.status == 204:
        print("(no directives: 204 No Content)", flush=True)
    try:
        await client.wait_idle(timeout)
    except TimeoutError:
        print("error: directives were not handled in time", file=sys.stderr)
        return 1
    return 0


async def _voice_source(args: argparse.Namespace) -> AsyncIterator[bytes] | None:
    """The audio of a voice request (--wav or --mic), or None after saying why not."""
    if args.mic:
        from ..client.microphone import MicrophoneUnavailable, microphone_source

        source = microphone_source(device=args.mic_device, max_seconds=args.mic_seconds)
        try:
            first = await anext(source)  # opens the device now: a missing one is said here
        except MicrophoneUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return None
        print("listening... (speak now; the server stops the capture)", flush=True)

        async def with_first() -> AsyncIterator[bytes]:
            yield first
            async for part in source:
                yield part

        return with_first()
    import wave

    from ..client import pcm_source, read_wav_pcm

    try:
        pcm = read_wav_pcm(args.wav)
    except (OSError, EOFError, ValueError, wave.Error) as exc:
        print(f"error: cannot read {args.wav}: {exc}", file=sys.stderr)
        return None
    print(f"streaming {args.wav} ({len(pcm) / 32000:.2f} s of audio, speed "
          f"{args.speed:g})", flush=True)
    return pcm_source(pcm, speed=args.speed)


async def _voice_request(client: CICClient, args: argparse.Namespace) -> int:
    printer: _Printer = args.printer
    source = await _voice_source(args)
    if source is None:
        return 1
    printer.started = time.perf_counter()
    try:
        response = await client.recognize_speech(source, lang=args.lang)
    except (ClientError, TimeoutError) as exc:
        print(f"error: request failed: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    print(f"[+{time.perf_counter() - printer.started:.3f}s] response complete: HTTP "
          f"{response.status}", flush=True)
    if not response.is_success:
        print(f"error: HTTP {response.status}: {response.description or 'no description'}",
              file=sys.stderr)
        return 1
    try:
        await client.wait_idle(args.timeout)
    except TimeoutError:
        print("error: directives were not handled in time", file=sys.stderr)
        return 1
    return 0


async def _interactive(client: CICClient, timeout: float) -> int:
    lines = _stdin_lines()
    interactive = sys.stdin.isatty()
    failed = False
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = await lines.get()
        if line is None:
            break
        text = line.strip()
        if not text:
            continue
        if text.lower() in ("quit", "exit"):
            break
        if await _request(client, text, timeout) != 0:
            failed = True
    return 1 if failed else 0


def _stdin_lines() -> asyncio.Queue[str | None]:
    """Lines of stdin delivered into the loop; None at EOF.

    A daemon thread rather than the loop's executor: a blocked ``readline`` must not
    keep the process alive after Ctrl-C or ``quit``.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def reader() -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line)
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except RuntimeError:
            pass  # the loop closed first (we are exiting)

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    return queue


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m opencic.cli.device ...``."""
    parser = argparse.ArgumentParser(prog="opencic")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["device", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
