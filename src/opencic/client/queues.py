"""Dialogue-ID bookkeeping and the directive message queue, sans-I/O.

Nothing here awaits or touches a socket: the SDK feeds directives and attachments in
as the multipart parser produces them and pops what is ready to execute. That keeps
every rule of B-DI and B-MQ testable with plain function calls.

Model
-----
* **Sources.** Each response body and each downchannel stream is a *source*; an
  attachment only resolves ``cid:`` references from the same source (B-MP-08).
* **Dialogue lane.** Directives carrying a ``dialogRequestId`` that matches the latest
  dialogue ID (or the ID of a request still being sent) are queued and executed one at
  a time, in arrival order (B-DI-04, B-MQ-01). The head waits for the attachments it
  references (B-MQ-02); later directives wait behind it so order is kept.
* **Immediate lane.** Directives without a ``dialogRequestId`` bypass the dialogue
  queue (B-DI-05); they still wait for their own attachments, but not for each other.
  Two lanes is the B-MQ-04 freedom: background actions are not held up by a long
  Speak of the current dialogue.
* **Stale directives** (another dialogue's ID) are dropped together with their
  attachments, whether those arrive before or after the directive (B-DI-04).

Dialogue IDs follow B-DI-01/02/06: :meth:`MessageQueue.begin_dialogue` registers the
ID of a request being sent (so StopCapture on the downchannel, which carries it, is
accepted while audio still streams); :meth:`commit_dialogue` makes it the latest ID
and drops everything older (B-DI-03, B-MQ-03); :meth:`abort_dialogue` forgets it and
keeps the previous latest ID (B-DI-06).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opencic.protocol.messages import Attachment, Directive

Source = Hashable


def normalize_cid(value: str) -> str:
    """Canonical form of a Content-ID or ``cid:`` URL for comparison.

    Case-insensitive and with or without angle brackets (spec README ambiguity #3,
    design pitfall on ``Content-ID: <id>``).
    """
    value = value.strip()
    if value[:4].lower() == "cid:":
        value = value[4:]
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value.strip().lower()


def referenced_cids(payload: Any) -> list[str]:
    """Every ``cid:`` URL anywhere in a payload, normalised, in document order.

    Scanning the whole payload (not just ``Speak.url``) keeps the queue generic: any
    directive that points at an attachment waits for it.
    """
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            if node[:4].lower() == "cid:":
                cid = normalize_cid(node)
                if cid and cid not in found:
                    found.append(cid)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload)
    return found


class Disposition(enum.Enum):
    """What :meth:`MessageQueue.add_directive` did with a directive."""

    QUEUED = "queued"  # dialogue lane (matching dialogRequestId)
    IMMEDIATE = "immediate"  # no dialogRequestId (B-DI-05)
    DROPPED = "dropped"  # stale dialogRequestId (B-DI-04)


@dataclass(slots=True)
class QueuedDirective:
    """A directive with the attachments it references, as handed to a handler."""

    directive: Directive
    source: Source
    cids: tuple[str, ...] = ()
    attachments: dict[str, Attachment] = field(default_factory=dict)
    # cids whose attachment never arrived before the source ended.
    missing: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return all(cid in self.attachments for cid in self.cids)

    def attachment(self, cid_url: str) -> Attachment | None:
        """The attachment a ``cid:`` URL (or bare Content-ID) refers to, if it arrived."""
        return self.attachments.get(normalize_cid(cid_url))


class MessageQueue:
    """Per-client directive queue with dialogue-ID filtering (B-DI, B-MQ)."""

    def __init__(self) -> None:
        self.latest_dialog_request_id: str | None = None
        self._pending_dialogues: list[str] = []
        self._dialogue: deque[QueuedDirective] = deque()
        self._immediate: list[QueuedDirective] = []
        # Attachments that arrived before any directive claimed them, per source.
        self._unclaimed: dict[tuple[Source, str], Attachment] = {}
        # cids of dropped directives: their attachments are dropped on arrival too.
        self._dropped_cids: set[tuple[Source, str]] = set()
        self._open_sources: set[Source] = set()
        self.dropped: list[Directive] = []  # history, for logs and tests

    # -- dialogue IDs (B-DI-01/02/03/06) -------------------------------------------

    def begin_dialogue(self, dialog_request_id: str) -> None:
        """A request with this new ID is being sent; accept its directives meanwhile."""
        if dialog_request_id not in self._pending_dialogues:
            self._pending_dialogues.append(dialog_request_id)

    def commit_dialogue(self, dialog_request_id: str) -> list[Directive]:
        """The request was sent: its ID becomes the latest (B-DI-02).

        Returns the directives of older dialogues that were dropped (B-DI-03, B-MQ-03).
        """
        if dialog_request_id in self._pending_dialogues:
            self._pending_dialogues.remove(dialog_request_id)
        self.latest_dialog_request_id = dialog_request_id
        return self._purge()

    def abort_dialogue(self, dialog_request_id: str) -> list[Directive]:
        """Sending failed or was cancelled: keep the previous latest ID (B-DI-06).

        Directives that already arrived for the aborted request are dropped.
        """
        if dialog_request_id in self._pending_dialogues:
            self._pending_dialogues.remove(dialog_request_id)
        return self._purge()

    def is_current(self, dialog_request_id: str) -> bool:
        return (
            dialog_request_id == self.latest_dialog_request_id
            or dialog_request_id in self._pending_dialogues
        )

    # -- input ------------------------------------------------------------------------

    def open_source(self, source: Source) -> None:
        self._open_sources.add(source)

    def add_directive(self, directive: Directive, source: Source) -> Disposition:
        """Sort one received directive into a lane or drop it (B-DI-04/05, B-MQ-01)."""
        self._open_sources.add(source)
        cids = tuple(referenced_cids(directive.payload))
        dialog = directive.dialog_request_id
        if dialog is not None and not self.is_current(dialog):
            self._drop(directive, source, cids)
            return Disposition.DROPPED
        item = QueuedDirective(directive, source, cids)
        for cid in cids:
            found = self._unclaimed.pop((source, cid), None)
            if found is not None:
                item.attachments[cid] = found
        if dialog is None:
            self._immediate.append(item)
            return Disposition.IMMEDIATE
        self._dialogue.append(item)
        return Disposition.QUEUED

    def add_attachment(self, attachment: Attachment, source: Source) -> bool:
        """Store an attachment part; False when it belongs to a dropped directive."""
        cid = normalize_cid(attachment.content_id)
        key = (source, cid)
        if key in self._dropped_cids:
            self._dropped_cids.discard(key)
            return False
        for item in self._waiting():
            if item.source == source and cid in item.cids and cid not in item.attachments:
                item.attachments[cid] = attachment
                return True
        self._unclaimed[key] = attachment
        return True

    def end_source(self, source: Source) -> None:
        """The response/downchannel ended: nothing more can arrive from it.

        Directives still waiting for an attachment are released with ``missing`` set
        rather than blocking the queue forever; unclaimed attachments are discarded.
        """
        self._open_sources.discard(source)
        for item in self._waiting():
            if item.source == source and not item.ready:
                item.missing = tuple(c for c in item.cids if c not in item.attachments)
                item.cids = tuple(c for c in item.cids if c in item.attachments)
        for key in [k for k in self._unclaimed if k[0] == source]:
            del self._unclaimed[key]
        self._dropped_cids = {k for k in self._dropped_cids if k[0] != source}

    # -- output -----------------------------------------------------------------------

    def pop_immediate(self) -> QueuedDirective | None:
        """The first directive without dialogue ID whose attachments are all there."""
        for i, item in enumerate(self._immediate):
            if item.ready:
                return self._immediate.pop(i)
        return None

    def pop_dialogue(self) -> QueuedDirective | None:
        """The head of the dialogue queue, once its attachments are there (B-MQ-01/02)."""
        if self._dialogue and self._dialogue[0].ready:
            return self._dialogue.popleft()
        return None

    def __len__(self) -> int:
        return len(self._dialogue) + len(self._immediate)

    @property
    def pending_dialogues(self) -> tuple[str, ...]:
        return tuple(self._pending_dialogues)

    def snapshot(self) -> Mapping[str, list[str]]:
        """Qualified names per lane (debugging aid)."""
        return {
            "dialogue": [i.directive.qualified_name for i in self._dialogue],
            "immediate": [i.directive.qualified_name for i in self._immediate],
        }

    # -- internals --------------------------------------------------------------------

    def _waiting(self) -> Iterator[QueuedDirective]:
        yield from self._dialogue
        yield from self._immediate

    def _drop(self, directive: Directive, source: Source, cids: tuple[str, ...]) -> None:
        self.dropped.append(directive)
        for cid in cids:
            if self._unclaimed.pop((source, cid), None) is None and source in self._open_sources:
                # Not here yet: drop it when it arrives (order not guaranteed, B-MQ-02).
                self._dropped_cids.add((source, cid))

    def _purge(self) -> list[Directive]:
        dropped: list[Directive] = []
        kept: deque[QueuedDirective] = deque()
        for item in self._dialogue:
            dialog = item.directive.dialog_request_id
            if dialog is not None and not self.is_current(dialog):
                missing = tuple(c for c in item.cids if c not in item.attachments)
                self._drop(item.directive, item.source, missing)
                dropped.append(item.directive)
            else:
                kept.append(item)
        self._dialogue = kept
        return dropped
