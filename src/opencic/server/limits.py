"""Request size bounds shared by every route.

Headers are bounded by the HTTP/2 server itself (the ``max_header_bytes`` setting:
granian answers 431 on the stream, or closes a connection whose header block is
several times over). Bodies are bounded here, per route, in two steps: a declared
``Content-Length`` over the limit is refused before a byte is read, and the bytes
actually received are counted as they stream in (HTTP/2 lets a client omit the
length), so no route ever reads more than its limit before answering.
"""

from __future__ import annotations

import collections
import math
import time
from typing import Any

from ..protocol.errors import PayloadTooLarge

# GET /v1/directives has no body (B-DC-01): a declared one is refused with 400, and a
# downchannel whose request streams bytes anyway is ended rather than read for ever.
MAX_DOWNCHANNEL_BODY = 0


def too_large(limit: int, what: str = "body") -> PayloadTooLarge:
    """400 (B-ST-03 has no 413 for events) with a description naming the limit."""
    return PayloadTooLarge(f"{what} is larger than {limit} bytes")


def declared_length(scope: dict[str, Any]) -> int | None:
    """The request's Content-Length, or None when absent or unreadable (a bad value is
    left to the HTTP/2 server, which checks it against the DATA it receives)."""
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def check_declared(scope: dict[str, Any], limit: int, what: str = "body") -> None:
    """Raises :class:`PayloadTooLarge` when the declared length is over ``limit``."""
    length = declared_length(scope)
    if length is not None and length > limit:
        raise too_large(limit, what)


class RateLimiter:
    """At most ``max_requests`` per key within ``window`` seconds (sliding): the one
    sliding window behind every limit of the server (downchannel opens, auth
    endpoints, failed sign-ins).

    :meth:`allow` counts accepted requests only, so a client that waits for
    :meth:`retry_after` gets back in. :meth:`full` / :meth:`take` /
    :meth:`give_back` count something else (say failures) decided after the fact.
    """

    def __init__(self, max_requests: int, window: float) -> None:
        self.max_requests = max_requests
        self.window = window
        self._recent: dict[str, collections.deque[float]] = {}

    def _stamps(self, key: str, now: float) -> collections.deque[float]:
        stamps = self._recent.setdefault(key, collections.deque())
        while stamps and now - stamps[0] >= self.window:
            stamps.popleft()
        return stamps

    def full(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return len(self._stamps(key, now)) >= self.max_requests

    def take(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._stamps(key, now).append(now)
        if len(self._recent) > 100_000:  # bound memory: forget keys that went quiet
            for k in [k for k, v in self._recent.items() if not v or now - v[-1] >= self.window]:
                del self._recent[k]

    def give_back(self, key: str, stamp: float) -> None:
        """Forget one :meth:`take` made at ``stamp`` (it turned out not to count)."""
        stamps = self._recent.get(key)
        if stamps and stamp in stamps:
            stamps.remove(stamp)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.full(key, now):
            return False
        self.take(key, now)
        return True

    def retry_after(self, key: str, now: float | None = None) -> int:
        """Whole seconds until ``key`` may be accepted again (at least 1)."""
        now = time.monotonic() if now is None else now
        stamps = self._stamps(key, now)
        if len(stamps) < self.max_requests:
            return 1
        return max(1, math.ceil(stamps[0] + self.window - now))
