"""Downchannel registry and the 429 rule, without sockets (B-DC-04, B-DC-05, B-EV-02)."""

from __future__ import annotations

import asyncio

from opencic.protocol.messages import Directive
from opencic.server.downchannels import DownchannelRateLimiter, DownchannelRegistry


def test_rate_limiter_refuses_third_request_within_window() -> None:
    limiter = DownchannelRateLimiter(max_requests=2, window=5.0)
    assert limiter.allow("d", now=0.0)
    assert limiter.allow("d", now=1.0)
    assert not limiter.allow("d", now=2.0)  # B-DC-05
    assert limiter.allow("other", now=2.0)  # per device
    assert limiter.allow("d", now=5.0)  # the first request left the window


def test_rate_limiter_does_not_count_refused_requests() -> None:
    limiter = DownchannelRateLimiter(max_requests=2, window=5.0)
    limiter.allow("d", now=0.0)
    limiter.allow("d", now=0.1)
    for t in (1.0, 2.0, 3.0, 4.0):
        assert not limiter.allow("d", now=t)
    assert limiter.allow("d", now=5.0)


def test_new_downchannel_closes_previous_and_event_rule() -> None:
    async def go() -> None:
        reg = DownchannelRegistry()
        first = reg.open("dev", ("127.0.0.1", 1000))
        assert reg.accepts_event("dev", ("127.0.0.1", 1000), strict=True)
        assert not reg.accepts_event("dev", ("127.0.0.1", 2000), strict=True)
        assert reg.accepts_event("dev", ("127.0.0.1", 2000), strict=False)
        second = reg.open("dev", ("127.0.0.1", 2000))
        assert first.closed and await first.queue.get() == b""  # B-DC-04: told to close
        reg.release(first)  # the old stream's task finishing must not drop the new one
        assert reg.get("dev") is second
        reg.release(second)
        assert reg.get("dev") is None
        assert not reg.accepts_event("dev", ("127.0.0.1", 2000), strict=False)

    asyncio.run(go())


def test_push_frames_each_directive_on_the_channel_boundary() -> None:
    async def go() -> None:
        reg = DownchannelRegistry()
        ch = reg.open("dev", ("h", 1))
        assert reg.push("dev", [Directive.create("Clova", "Hello")])
        data = await ch.queue.get()
        assert data.startswith(f"--{ch.writer.boundary}\r\n".encode())
        assert data.endswith(f"\r\n--{ch.writer.boundary}".encode())  # handed over at once
        assert not reg.push("nobody", [Directive.create("Clova", "Hello")])
        assert reg.broadcast([Directive.create("Notifier", "ClearIndicator")]) == 1

    asyncio.run(go())
