"""Runs handlers for queued directives: the asyncio side of :mod:`.queues`.

Received multipart items go in through :meth:`Dispatcher.absorb`; two worker tasks
(the dialogue lane and the immediate lane, B-MQ-04) pop ready directives from the
sans-I/O :class:`MessageQueue` and await the handlers one at a time (B-MQ-01).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from opencic.protocol.event_stream import AttachmentReceived, DirectiveReceived, MalformedPart
from opencic.protocol.messages import Directive

from .models import EventResponse
from .queues import Disposition, MessageQueue, QueuedDirective

log = logging.getLogger("opencic.client")

Handler = Callable[[QueuedDirective], Awaitable[None] | None]

# Directives the SDK understands itself: without an app handler they are not "unknown".
INTERNAL = frozenset({"Clova.Hello", "SpeechRecognizer.StopCapture"})


class Dispatcher:
    def __init__(self) -> None:
        self.queue = MessageQueue()
        self.handlers: dict[str, list[Handler]] = {}
        self._lane_events = (asyncio.Event(), asyncio.Event())
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy = 0
        self._tasks: list[asyncio.Task[None]] = []
        # dialogRequestId of an upload in progress -> set when StopCapture arrives.
        self.captures: dict[str, asyncio.Event] = {}

    def on(self, name: str, handler: Handler) -> None:
        self.handlers.setdefault(name, []).append(handler)

    def start(self) -> None:
        lanes = (self.queue.pop_dialogue, self.queue.pop_immediate)
        for pop, wake in zip(lanes, self._lane_events, strict=True):
            self._tasks.append(asyncio.create_task(self._lane(pop, wake)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def wait_idle(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            while True:
                await self._idle.wait()
                await asyncio.sleep(0)  # let workers pick up what was just queued
                if self._idle.is_set():
                    return

    # -- dialogue IDs (B-DI-02/06) ---------------------------------------------------

    def settle(self, dialog_request_id: str, accepted: bool) -> None:
        """The server answered the request carrying this ID: make it latest or forget it."""
        if accepted:
            dropped = self.queue.commit_dialogue(dialog_request_id)
        else:
            dropped = self.queue.abort_dialogue(dialog_request_id)
        for directive in dropped:
            log.info("stale directive dropped name=%s dialogRequestId=%s",
                     directive.qualified_name, directive.dialog_request_id)
        self.wake()

    # -- input ---------------------------------------------------------------------------

    def absorb(
        self, items: Sequence[Any], source: str, response: EventResponse | None, enqueue: bool
    ) -> None:
        """Record parser items on ``response`` and, if ``enqueue``, queue them for handlers."""
        for item in items:
            if isinstance(item, DirectiveReceived):
                if response is not None:
                    response.directives.append(item.directive)
                if enqueue:
                    self._accept(item.directive, source)
            elif isinstance(item, AttachmentReceived):
                if response is not None:
                    response.attachments.append(item.attachment)
                if enqueue and not self.queue.add_attachment(item.attachment, source):
                    log.info("attachment of a dropped directive discarded cid=%s",
                             item.attachment.content_id)
            elif isinstance(item, MalformedPart):
                # One bad part must not stop the others (B-UN-01 spirit).
                log.warning("malformed part %s in %s: %s", item.index, source, item.description)
                if response is not None:
                    response.malformed.append(f"part {item.index}: {item.description}")
        self.wake()

    def end_source(self, source: str) -> None:
        self.queue.end_source(source)
        self.wake()

    def _accept(self, directive: Directive, source: str) -> None:
        dialog = directive.dialog_request_id
        if directive.qualified_name == "SpeechRecognizer.StopCapture" and dialog in self.captures:
            self.captures[dialog].set()  # stop streaming audio at once (B-SR-02)
        if self.queue.add_directive(directive, source) is Disposition.DROPPED:
            log.info("stale directive dropped name=%s dialogRequestId=%s latest=%s",
                     directive.qualified_name, dialog, self.queue.latest_dialog_request_id)

    # -- workers ---------------------------------------------------------------------

    def wake(self) -> None:
        for event in self._lane_events:
            event.set()
        self._update_idle()

    def _update_idle(self) -> None:
        if len(self.queue) == 0 and self._busy == 0:
            self._idle.set()
        else:
            self._idle.clear()

    async def _lane(self, pop: Callable[[], QueuedDirective | None], wake: asyncio.Event) -> None:
        """Run one lane's directives one at a time, in order (B-MQ-01)."""
        while True:
            item = pop()
            if item is None:
                self._update_idle()
                wake.clear()
                await wake.wait()
                continue
            self._busy += 1
            self._idle.clear()
            try:
                await self._dispatch(item)
            finally:
                self._busy -= 1
                self._update_idle()

    async def _dispatch(self, item: QueuedDirective) -> None:
        name = item.directive.qualified_name
        if item.missing:
            log.warning("directive %s runs without attachment(s) %s (never arrived)",
                        name, ", ".join(item.missing))
        handlers = self.handlers.get(name) or self.handlers.get("*")
        if not handlers:
            if name not in INTERNAL:
                # B-UN-01: ignore only this directive, with one log line.
                log.info("unknown directive ignored name=%s messageId=%s",
                         name, item.directive.header.message_id)
            return
        for handler in handlers:
            try:
                result = handler(item)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                # A broken handler must not stall the queue for every later directive.
                log.exception("handler for %s failed", name)
