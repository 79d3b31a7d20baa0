"""Outbound is strict: a directive that fails its schema never reaches the wire."""

from __future__ import annotations

import pytest

from opencic.protocol.errors import OutboundSchemaError
from opencic.protocol.messages import Attachment, Directive
from opencic.protocol.multipart import collect_parts
from opencic.protocol.multipart_writer import MultipartWriter
from opencic.server.responses import encode_reply


def test_invalid_directive_raises_instead_of_being_sent() -> None:
    bad = Directive.create("Clova", "RenderText", {})  # text is Always
    with pytest.raises(OutboundSchemaError):
        encode_reply(MultipartWriter(), [bad], [])
    unknown = Directive.create("Clova", "NoSuchThing", {})
    with pytest.raises(OutboundSchemaError):
        encode_reply(MultipartWriter(), [unknown], [])


def test_attachment_follows_its_directive_with_bracketed_content_id() -> None:
    """B-MP-07: Content-ID: <id> on the attachment, cid:id in the directive."""
    mp3 = Attachment("abc-123", b"\xff\xf3" * 50)
    speak = Directive.create("SpeechSynthesizer", "Speak", {
        "format": "AUDIO_MPEG", "token": "t", "url": mp3.cid_url,
    }, dialog_request_id="d")
    text = Directive.create("Clova", "RenderText", {"text": "hi"}, dialog_request_id="d")
    writer = MultipartWriter()
    body = encode_reply(writer, [speak, text], [mp3])
    parts = collect_parts(body, writer.content_type)
    assert [p.headers.get("content-id") for p in parts] == [None, "<abc-123>", None]
    assert parts[1].body == mp3.data
    assert writer.content_type.startswith("multipart/related; boundary=")
