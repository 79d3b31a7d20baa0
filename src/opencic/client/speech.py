"""Speech output (B-SR-08..10): play Speak directives and report on them.

The SDK does not own a loudspeaker; the application passes a ``play`` coroutine.
:class:`SpeechOutput` does the protocol part around it::

    speech = SpeechOutput(client, play)        # registers the Speak handler
    client = CICClient(..., context_provider=lambda: [*default_context(), speech.context()])

For each Speak, in arrival order (the dialogue lane runs one directive at a time,
B-SR-08): wait ``x-clova-pause-before`` ms, resolve ``cid:`` to the attachment or
leave the URL to the player (B-SR-09), send ``SpeechStarted``, play, then send
``SpeechFinished`` or, when interrupted by :meth:`SpeechOutput.stop`,
``SpeechStopped`` (B-SR-10). The ``SpeechSynthesizer.SpeechState`` context object
mirrors it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opencic.protocol.messages import Attachment, ContextObject

from .errors import ClientError
from .queues import QueuedDirective

if TYPE_CHECKING:
    from .sdk import CICClient

log = logging.getLogger("opencic.client")


@dataclass(frozen=True, slots=True)
class SpeechItem:
    """What the player gets: the MP3 bytes (``attachment``) or a ``url`` to stream."""

    token: str
    url: str
    attachment: Attachment | None
    payload: dict[str, Any]


Player = Callable[[SpeechItem], Coroutine[Any, Any, None]]


class SpeechOutput:
    def __init__(self, client: CICClient, play: Player) -> None:
        self._client = client
        self._play = play
        self._token = ""
        self._activity = "FINISHED"
        self._current: asyncio.Task[None] | None = None
        # Speaks without dialogRequestId run in the other lane (B-MQ-04); one
        # loudspeaker still plays one Speak at a time (B-SR-08).
        self._lock = asyncio.Lock()
        client.on("SpeechSynthesizer.Speak", self.handle)

    def context(self) -> ContextObject:
        """``SpeechSynthesizer.SpeechState`` for the next event's context (B-SR-10)."""
        return ContextObject(
            "SpeechSynthesizer", "SpeechState",
            {"token": self._token, "playerActivity": self._activity},
        )

    def stop(self) -> None:
        """Interrupt the Speak being played (it is then reported as SpeechStopped)."""
        if self._current is not None:
            self._current.cancel()

    async def handle(self, item: QueuedDirective) -> None:
        async with self._lock:
            await self._speak(item)

    async def _speak(self, item: QueuedDirective) -> None:
        payload = item.directive.payload
        token = str(payload.get("token", ""))
        url = str(payload.get("url", ""))
        attachment = item.attachment(url) if url[:4].lower() == "cid:" else None
        if url[:4].lower() == "cid:" and attachment is None:
            log.warning("Speak %s skipped: attachment %s never arrived", token, url)
            return
        pause = payload.get("x-clova-pause-before")
        if isinstance(pause, int | float) and pause > 0:
            await asyncio.sleep(pause / 1000)
        self._token, self._activity = token, "PLAYING"
        await self._report("SpeechStarted", token)
        self._current = asyncio.create_task(
            self._play(SpeechItem(token, url, attachment, payload))
        )
        try:
            await self._current
            self._activity = "FINISHED"
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the handler itself is being cancelled (client closing)
            self._activity = "STOPPED"
        finally:
            self._current = None
        await self._report("SpeechFinished" if self._activity == "FINISHED" else "SpeechStopped",
                           token)

    async def _report(self, name: str, token: str) -> None:
        try:
            event = self._client.create_event("SpeechSynthesizer", name, {"token": token})
            response = await self._client.send_event(event)
        except (ClientError, TimeoutError) as exc:
            log.warning("%s for %s not delivered: %s", name, token, exc)
            return
        if not response.is_success:
            log.warning("%s for %s refused: HTTP %d %s", name, token, response.status,
                        response.description)
