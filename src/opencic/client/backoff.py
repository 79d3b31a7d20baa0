"""Reconnect delays: exponential backoff with jitter (B-DC-07, B-KA-01).

A device whose downchannel ends must come back quickly (B-DC-07), but thousands of
devices reconnecting after a server restart must not arrive in lock-step, and a
refused device must not hammer the server (B-DC-05 answers 429 to that). Hence
exponential growth from 0.25 s to a 20 s cap, with each delay drawn at random from
the upper half of its step ("equal jitter"), so delays stay within [0.25 s, 20 s].
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    initial: float = 0.25
    maximum: float = 20.0
    multiplier: float = 2.0
    # Fraction of each step that is randomised: 0.5 draws from [step/2, step].
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)

    def step(self, attempt: int) -> float:
        """The un-jittered delay before reconnect attempt ``attempt`` (0-based)."""
        # Cap the exponent so huge attempt counts do not overflow float arithmetic.
        return min(self.maximum, self.initial * self.multiplier ** min(attempt, 64))

    def delay(self, attempt: int) -> float:
        """A jittered delay in ``[initial, maximum]`` for attempt ``attempt``."""
        step = self.step(attempt)
        value = step * (1.0 - self.jitter * self.rng.random())
        return max(self.initial, min(self.maximum, value))

    def delays(self) -> Iterator[float]:
        """An endless schedule, one delay per attempt."""
        attempt = 0
        while True:
            yield self.delay(attempt)
            attempt += 1
