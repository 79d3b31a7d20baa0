"""What the assistant returns for one event: directives plus their binary attachments.

An empty :class:`Reply` means the server answers ``204 No Content`` (B-EV-03).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..protocol.ids import new_id
from ..protocol.messages import Attachment, Directive, Header

TTS_FORMAT = "AUDIO_MPEG"  # the only Speak format (B-AU-06)


@dataclass(slots=True)
class Reply:
    directives: list[Directive] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        # Attachments are only ever sent for a directive that refers to them.
        return not self.directives

    def add(self, directive: Directive, attachment: Attachment | None = None) -> None:
        self.directives.append(directive)
        if attachment is not None:
            self.attachments.append(attachment)

    def extend(self, other: Reply) -> None:
        self.directives.extend(other.directives)
        self.attachments.extend(other.attachments)

    def attachment_for(self, directive: Directive) -> Attachment | None:
        """The attachment a directive's ``url`` points at as ``cid:<id>`` (B-MP-07)."""
        url = directive.payload.get("url")
        if not isinstance(url, str) or not url.startswith("cid:"):
            return None
        wanted = url[4:].strip("<>").lower()
        for attachment in self.attachments:
            if attachment.content_id.strip("<>").lower() == wanted:
                return attachment
        return None

    def parts(self) -> Iterator[Directive | Attachment]:
        """Parts in wire order: each directive, then the attachment it refers to.

        That is the order of the CIC response example (Speak, its audio, RenderText), and
        it lets a client start playing a Speak as soon as its audio part has arrived.
        """
        sent: set[int] = set()
        for directive in self.directives:
            yield directive
            attachment = self.attachment_for(directive)
            if attachment is not None and id(attachment) not in sent:
                sent.add(id(attachment))
                yield attachment
        for attachment in self.attachments:
            if id(attachment) not in sent:
                yield attachment


# --------------------------------------------------------------------------- builders


def speak(
    mp3: bytes, *, dialog_request_id: str | None, tts_lang: str | None = "en"
) -> tuple[Directive, Attachment]:
    """SpeechSynthesizer.Speak whose audio travels as an attachment (B-SR-09, B-MP-07)."""
    attachment = Attachment(new_id(), mp3)
    payload: dict[str, object] = {
        "format": TTS_FORMAT,
        "token": new_id(),
        "url": attachment.cid_url,
    }
    if tts_lang is not None:
        payload["ttsLang"] = tts_lang
    directive = Directive.create(
        "SpeechSynthesizer", "Speak", payload, dialog_request_id=dialog_request_id
    )
    return directive, attachment


def render_text(text: str, *, dialog_request_id: str | None) -> Directive:
    """Clova.RenderText: text for the device's display."""
    return Directive.create(
        "Clova", "RenderText", {"text": text}, dialog_request_id=dialog_request_id
    )


def with_dialog_request_id(directive: Directive, dialog_request_id: str | None) -> Directive:
    """``directive`` carrying exactly ``dialog_request_id`` (B-DI-07); a copy if it differs."""
    if directive.header.dialog_request_id == dialog_request_id:
        return directive
    header = directive.header
    return Directive(
        Header(header.namespace, header.name, header.message_id, dialog_request_id),
        directive.payload,
    )
