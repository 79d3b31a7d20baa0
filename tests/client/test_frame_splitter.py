"""The client feeds h2 one whole frame at a time (so a GOAWAY is never lost)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from opencic.client.connection import FrameSplitter


def _frame(payload: bytes, kind: int = 0) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, 0]) + (1).to_bytes(4, "big") + payload


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8), st.lists(st.integers(1, 50), max_size=40))
def test_any_split_yields_the_same_whole_frames(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(_frame(p) for p in payloads)
    splitter, out, pos = FrameSplitter(), [], 0
    for cut in cuts:
        out += splitter.feed(stream[pos : pos + cut])
        pos += cut
    out += splitter.feed(stream[pos:])
    assert out == [_frame(p) for p in payloads]
