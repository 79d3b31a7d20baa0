"""The test FaultProxy itself, over real loopback sockets: a pause holds traffic but
still records what the sender wrote (up to ``hold_limit``), and a resume delivers it
in order. Tests that wait for "the client sent X" while paused rely on this."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from support.faultproxy import FaultProxy


async def eventually(check: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def with_upstream(body: Callable[[str, int, bytearray], object]) -> None:
    received = bytearray()

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            received.extend(data)
        writer.close()

    server = await asyncio.start_server(sink, "127.0.0.1", 0)
    try:
        await body("127.0.0.1", server.sockets[0].getsockname()[1], received)  # type: ignore[misc]
    finally:
        server.close()


def test_a_pause_records_every_write_and_a_resume_delivers_them_in_order() -> None:
    async def body(host: str, port: int, received: bytearray) -> None:
        async with FaultProxy(host, port) as proxy:
            _, writer = await asyncio.open_connection(proxy.host, proxy.port)
            writer.write(b"a")
            await writer.drain()
            await eventually(lambda: received == b"a")
            proxy.pause()
            for chunk in (b"b", b"c", b"d"):  # separate writes, as a WINDOW_UPDATE then a request
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(0.05)
            link = proxy.links[0]
            await eventually(lambda: bytes(link.sent) == b"abcd")
            await asyncio.sleep(0.1)
            assert received == b"a"  # held, not forwarded
            proxy.resume()
            await eventually(lambda: received == b"abcd")
            writer.close()

    asyncio.run(with_upstream(body))


def test_a_full_hold_stops_reading() -> None:
    async def body(host: str, port: int, received: bytearray) -> None:
        async with FaultProxy(host, port, hold_limit=1) as proxy:
            _, writer = await asyncio.open_connection(proxy.host, proxy.port)
            await proxy.wait_accepted(1)
            proxy.pause()
            writer.write(b"x")
            await writer.drain()
            link = proxy.links[0]
            await eventually(lambda: bytes(link.sent) == b"x")
            writer.write(b"y")
            await writer.drain()
            await asyncio.sleep(0.2)
            assert bytes(link.sent) == b"x"  # past hold_limit nothing more is read
            proxy.resume()
            await eventually(lambda: received == b"xy")
            writer.close()

    asyncio.run(with_upstream(body))
