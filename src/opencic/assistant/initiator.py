"""What started a voice request (``SpeechRecognizer.Recognize.initiator``), and what
that means for recognising it.

* ``WAKEWORD`` with ``wakeWord.indices``: the audio starts 300 ms before the wake word
  (B-AU-04) and the indices are sample offsets of the wake word in it. The wake word
  is not part of the request ("Clova, what time is it" asks "what time is it"), so
  recognition starts at ``endIndexInSamples``; the pre-roll and the wake word are
  received and counted but not recognised. Without indices the whole audio is
  recognised and the wake word is dropped as a skip word by the intent templates.
* ``TAP`` (and no initiator at all): the server finds the end of speech and sends
  StopCapture (B-SR-01).
* ``PRESS_AND_HOLD``: the user ends the request by releasing the button, so silence
  does not end it and no StopCapture is sent; the answer follows the end of the upload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..protocol.errors import BadRequest

SAMPLE_RATE = 16_000
PRE_ROLL_SAMPLES = 4_800  # B-AU-04: 300 ms before the wake word

WAKEWORD, TAP, PRESS_AND_HOLD = "WAKEWORD", "TAP", "PRESS_AND_HOLD"


@dataclass(frozen=True, slots=True)
class Initiator:
    kind: str | None  # WAKEWORD, TAP, PRESS_AND_HOLD; None when the event has none
    skip_samples: int = 0  # leading samples not to recognise (pre-roll + wake word)
    wake_word: str | None = None

    @property
    def endpoint_on_silence(self) -> bool:
        """Whether the server ends the request at the end of speech (StopCapture)."""
        return self.kind != PRESS_AND_HOLD

    @property
    def skip_bytes(self) -> int:
        return self.skip_samples * 2


def _index(indices: dict[str, Any], name: str) -> int:
    value = indices.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 0:
        raise BadRequest(
            f"initiator.payload.wakeWord.indices.{name} must be a whole number of samples "
            f"(>= 0, 1 = 1/{SAMPLE_RATE} s; B-AU-04), got {value!r}"
        )
    return int(value)


def read_initiator(payload: dict[str, Any], *, max_samples: int) -> Initiator:
    """The Recognize payload's initiator. Lenient about what it can do without (an
    unknown type is treated as TAP; the schema check already logged it), strict about
    wake-word indices it would have to act on: wrong ones get a 400 that says why."""
    raw = payload.get("initiator")
    if not isinstance(raw, dict):
        return Initiator(None)
    kind = raw.get("type")
    kind = kind if kind in (WAKEWORD, TAP, PRESS_AND_HOLD) else TAP
    if kind != WAKEWORD:
        return Initiator(kind)
    inner = raw.get("payload")
    wake = inner.get("wakeWord") if isinstance(inner, dict) else None
    if not isinstance(wake, dict):
        return Initiator(kind)
    name = wake.get("name") if isinstance(wake.get("name"), str) else None
    indices = wake.get("indices")
    if not isinstance(indices, dict):
        return Initiator(kind, wake_word=name)
    start, end = _index(indices, "startIndexInSamples"), _index(indices, "endIndexInSamples")
    if end < start:
        raise BadRequest(
            f"initiator wake-word indices end before they start ({start} > {end}); "
            "they are sample offsets of the wake word in this request's audio (B-AU-04)"
        )
    if end > max_samples:
        raise BadRequest(
            f"initiator wake-word end index {end} lies beyond the longest audio this "
            f"server accepts ({max_samples} samples)"
        )
    return Initiator(kind, end, name)
