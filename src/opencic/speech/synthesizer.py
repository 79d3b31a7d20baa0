"""Text to MP3 for ``SpeechSynthesizer.Speak``: cached, coalesced, off the event loop.

Assistants repeat themselves ("Sorry, I didn't understand that.", the help text, the
time at a given minute), so finished MP3s are kept in an LRU bounded by total bytes.
Synthesis (tens to hundreds of ms of CPU) runs on a small dedicated thread pool, never
on the event loop; a dedicated pool keeps a burst of TTS from starving the loop's
default executor, which other layers use for their own blocking calls. Concurrent
requests for the same text share one synthesis.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass

from .mp3 import DEFAULT_BITRATE_KBPS, encode_mp3
from .tts import PiperTextToSpeech, TextToSpeech

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024

CacheKey = tuple[str, str]  # (text, voice id)


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    syntheses: int = 0
    evictions: int = 0
    entries: int = 0
    bytes: int = 0


class _ByteBoundedLRU:
    """An LRU of bytes values bounded by their total size. Not thread-safe by itself."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, max_bytes)
        self._items: OrderedDict[CacheKey, bytes] = OrderedDict()
        self.size = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: CacheKey) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: CacheKey, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return  # would evict everything else and still not fit
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._items[key] = data
        self.size += len(data)
        while self.size > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self.size -= len(evicted)
            self.evictions += 1

    def clear(self) -> None:
        self._items.clear()
        self.size = 0


class SpeechSynthesizer:
    """Turns text into MP3 bytes with the configured :class:`TextToSpeech` engine."""

    def __init__(
        self,
        tts: TextToSpeech | None = None,
        *,
        bitrate_kbps: int = DEFAULT_BITRATE_KBPS,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        max_workers: int = 2,
    ) -> None:
        self.tts: TextToSpeech = tts if tts is not None else PiperTextToSpeech()
        self.bitrate_kbps = bitrate_kbps
        self._cache = _ByteBoundedLRU(cache_bytes)
        self._lock = threading.Lock()  # guards _cache, _inflight and _stats
        self._inflight: dict[CacheKey, Future[bytes]] = {}
        self._stats = CacheStats()
        # Two workers by default: the engine serialises its own model runs, so more
        # threads would only queue; the second lets MP3 encoding overlap the next run.
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tts")

    # ------------------------------------------------------------------ public API

    @property
    def voice_id(self) -> str:
        return f"{self.tts.voice_id}/mp3-{self.bitrate_kbps}k"

    def key(self, text: str) -> CacheKey:
        return (text, self.voice_id)

    def stats(self) -> CacheStats:
        with self._lock:
            s = self._stats
            return CacheStats(
                s.hits,
                s.misses,
                s.coalesced,
                s.syntheses,
                self._cache.evictions,
                len(self._cache),
                self._cache.size,
            )

    def cached(self, text: str) -> bytes | None:
        """The cached MP3 for ``text``, or None (does not count as a hit or miss)."""
        with self._lock:
            return self._cache.get(self.key(text))

    def synthesize_mp3(self, text: str) -> bytes:
        """Blocking variant for threads and tools: cached and coalesced like the async one."""
        future, owner = self._claim(self.key(text))
        if owner:
            self._render_into(text, future)
        return future.result()

    async def speak_mp3(self, text: str) -> bytes:
        """The MP3 for ``text``; never blocks the event loop."""
        future, owner = self._claim(self.key(text))
        if owner:
            # Submitted, not awaited directly: the job completes the shared future even
            # if this request is cancelled (say the device hung up), so others still get it.
            self._submit(text, future)
        if future.done():  # a cache hit: skip the wrapping, it is the hot path
            return future.result()
        # shield: cancelling one waiter must not cancel the shared synthesis.
        return await asyncio.shield(asyncio.wrap_future(future))

    def prefetch(self, text: str) -> None:
        """Start rendering ``text`` in the background unless it is cached or in flight; a
        later :meth:`speak_mp3` of the same text joins it. Never blocks."""
        self._start_all((text,))

    async def warm_up(self, phrases: Iterable[str] = (), *, wait: bool = True) -> None:
        """Load the model and run it once (the first run is slow), then pre-render phrases.

        Await it at server start-up, before accepting devices; the work runs on the TTS
        threads, so the event loop stays free. With ``wait=False`` only the model load is
        awaited and the phrases render in the background (a request for one of them
        meanwhile joins its synthesis instead of starting another).
        """
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.tts.synthesize, "Hello.")
        pending = self._start_all(phrases)
        if wait and pending:
            await asyncio.gather(*(asyncio.wrap_future(f) for f in pending))

    def warm_up_blocking(self, phrases: Iterable[str] = (), wait: bool = True) -> None:
        """:meth:`warm_up` for code without an event loop (tools, scripts, threads)."""
        self.tts.synthesize("Hello.")
        if not wait:
            self._start_all(phrases)
            return
        for phrase in phrases:
            # Rendered in this thread, so this also works from inside a TTS worker.
            self.synthesize_mp3(phrase)

    def _start_all(self, phrases: Iterable[str]) -> list[Future[bytes]]:
        """Submit every phrase not cached or in flight yet; their futures."""
        started: list[Future[bytes]] = []
        for phrase in phrases:
            future, owner = self._claim(self.key(phrase))
            if owner:
                self._submit(phrase, future)
                started.append(future)
        return started

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def close(self) -> None:
        """Stop the workers; requests still waiting fail instead of hanging."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            pending = list(self._inflight.values())
            self._inflight.clear()
        for future in pending:
            _settle(future, exception=RuntimeError("speech synthesizer closed"))

    # ------------------------------------------------------------------ internals

    def _claim(self, key: CacheKey) -> tuple[Future[bytes], bool]:
        """A future for ``key`` and whether the caller must produce it."""
        with self._lock:
            data = self._cache.get(key)
            if data is not None:
                self._stats.hits += 1
                done: Future[bytes] = Future()
                done.set_result(data)
                return done, False
            pending = self._inflight.get(key)
            if pending is not None:
                self._stats.coalesced += 1
                return pending, False
            self._stats.misses += 1
            future: Future[bytes] = Future()
            self._inflight[key] = future
            return future, True

    def _submit(self, text: str, future: Future[bytes]) -> None:
        try:
            self._executor.submit(self._render_into, text, future)
        except RuntimeError as exc:  # closed: fail this text's waiters, now and later
            with self._lock:
                self._inflight.pop(self.key(text), None)
            _settle(future, exception=exc)

    def _render_into(self, text: str, future: Future[bytes]) -> None:
        key = self.key(text)
        try:
            data = encode_mp3(self.tts.synthesize(text), self.bitrate_kbps)
        except BaseException as exc:
            with self._lock:
                self._inflight.pop(key, None)
            _settle(future, exception=exc)
            if not isinstance(exc, Exception):
                raise
            return
        with self._lock:
            self._stats.syntheses += 1
            self._cache.put(key, data)
            self._inflight.pop(key, None)
        _settle(future, result=data)


def _settle(
    future: Future[bytes], *, result: bytes | None = None, exception: BaseException | None = None
) -> None:
    """Complete ``future`` unless close() already failed it."""
    if future.done():
        return
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            assert result is not None
            future.set_result(result)
    except InvalidStateError:
        return  # lost a race with close(), which already failed it
