"""Plain data the SDK hands to applications, and small helpers without I/O."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from opencic.protocol.messages import Attachment, ContextObject, Directive

from .errors import AuthenticationFailed, RequestFailed
from .queues import normalize_cid

# 200 ms of 16 kHz mono 16-bit PCM: 3,200 samples (B-AU-02).
AUDIO_CHUNK_BYTES = 6400


@dataclass(slots=True)
class EventResponse:
    """The answer to one ``POST /v1/events``.

    ``directives`` and ``attachments`` are everything the body carried, in arrival
    order, whether or not the message queue later executes them (a stale dialogue's
    directives are dropped there, B-DI-04). For a non-2xx status ``description`` holds
    the ``System.Exception`` description when the server sent one (B-ST-01).
    """

    status: int
    directives: list[Directive] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    description: str | None = None
    malformed: list[str] = field(default_factory=list)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def attachment(self, cid_url: str) -> Attachment | None:
        """The attachment a ``cid:`` URL refers to (B-MP-08)."""
        wanted = normalize_cid(cid_url)
        for attachment in self.attachments:
            if normalize_cid(attachment.content_id) == wanted:
                return attachment
        return None

    def raise_for_status(self) -> EventResponse:
        """Raise :class:`RequestFailed` (or :class:`AuthenticationFailed`) for non-2xx."""
        if self.status == 401:
            raise AuthenticationFailed(self.status, self.description)
        if not self.is_success:
            raise RequestFailed(self.status, self.description)
        return self


def exception_description(directives: Sequence[Directive]) -> str | None:
    """The description of the first ``System.Exception`` among ``directives``."""
    for directive in directives:
        if directive.qualified_name == "System.Exception":
            description = directive.payload.get("description")
            return str(description) if description is not None else None
    return None


def default_context() -> list[ContextObject]:
    """A minimal truthful context for a device with a speaker and nothing else (B-EV-07).

    Applications that can report more (alerts, playback, display...) pass their own
    ``context_provider`` to :class:`~opencic.client.CICClient`.
    """
    local_time = datetime.now().astimezone().isoformat(timespec="seconds")
    return [
        ContextObject("Speaker", "VolumeState", {"volume": 5, "muted": False}),
        ContextObject(
            "Device",
            "DeviceState",
            {
                "localTime": local_time,
                "volume": {
                    "actions": ["Decrease", "Increase", "SetValue"],
                    "min": 0,
                    "max": 10,
                    "value": 5,
                },
            },
        ),
    ]


async def rechunk(
    audio: AsyncIterable[bytes], size: int = AUDIO_CHUNK_BYTES
) -> AsyncIterator[bytes]:
    """Regroup arbitrary audio buffers into ``size``-byte parts (the last may be short).

    Capture APIs deliver whatever buffer size they like; CIC wants one part per 200 ms
    (B-AU-02), so the SDK re-slices rather than trusting the caller.
    """
    pending = bytearray()
    async for data in audio:
        pending += data
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)
