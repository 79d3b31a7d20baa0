"""Recognize.initiator (assistant/initiator.py, B-AU-04): what to skip, who ends."""

from __future__ import annotations

from typing import Any

import pytest

from opencic.assistant.initiator import PRESS_AND_HOLD, TAP, WAKEWORD, Initiator, read_initiator
from opencic.protocol.errors import BadRequest

MAX = 30 * 16_000


def wake(start: Any = 4800, end: Any = 12800, **extra: Any) -> dict[str, Any]:
    return {"initiator": {"type": WAKEWORD, "inputSource": "SELF", "payload": {
        "deviceUUID": "u", "wakeWord": {"name": "clova", "indices": {
            "startIndexInSamples": start, "endIndexInSamples": end}, **extra}}}}


def test_wake_word_indices_mark_what_is_not_recognised() -> None:
    got = read_initiator(wake(), max_samples=MAX)
    assert got == Initiator(WAKEWORD, 12800, "clova")
    assert got.skip_bytes == 25600 and got.endpoint_on_silence


def test_no_initiator_tap_and_press_and_hold() -> None:
    assert read_initiator({}, max_samples=MAX) == Initiator(None)
    assert read_initiator({"initiator": {"type": TAP}}, max_samples=MAX).endpoint_on_silence
    hold = read_initiator({"initiator": {"type": PRESS_AND_HOLD}}, max_samples=MAX)
    assert hold.kind == PRESS_AND_HOLD and not hold.endpoint_on_silence and hold.skip_samples == 0
    # Lenient: an unknown type or a wake word without indices is still a request.
    assert read_initiator({"initiator": {"type": "KNOCK"}}, max_samples=MAX).kind == TAP
    no_indices = {"initiator": {"type": WAKEWORD, "payload": {"wakeWord": {"name": "clova"}}}}
    assert read_initiator(no_indices, max_samples=MAX) == Initiator(WAKEWORD, 0, "clova")


@pytest.mark.parametrize(("start", "end", "why"), [
    (-1, 100, "whole number"), (0, 1.5, "whole number"), ("0", 100, "whole number"),
    (True, 100, "whole number"), (9000, 4800, "end before they start"),
    (4800, MAX + 1, "beyond the longest audio"),
])
def test_wrong_indices_are_refused_clearly(start: Any, end: Any, why: str) -> None:
    with pytest.raises(BadRequest, match=why):
        read_initiator(wake(start, end), max_samples=MAX)
