"""The assistant end to end, sans HTTP: real hassil, real Piper, real LAME."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import miniaudio
import pytest

from opencic.assistant import Assistant, DeviceContext, IntentResponse, Reply
from opencic.assistant.capabilities import CAPABILITIES, fallback
from opencic.assistant.capabilities.help import HELP_SPEECH
from opencic.protocol.errors import BadRequest
from opencic.protocol.messages import ContextObject, Directive, Event
from opencic.speech import PiperTextToSpeech, SpeechSynthesizer

DEVICE = DeviceContext("device-1", "OpenCIC-Simulator/0.1.0 (Linux; x86_64)")
DIALOG = "4e4080d6-c440-498a-bb73-ae86c6312806"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def recognize(text: str, *context: ContextObject, dialog: str | None = DIALOG) -> Event:
    return Event.create(
        "TextRecognizer",
        "Recognize",
        {"text": text},
        dialog_request_id=dialog,
        context=list(context),
    )


def decode(mp3: bytes) -> miniaudio.DecodedSoundFile:
    """Decode at the stream's own rate and channel count (decode() would convert)."""
    return miniaudio.mp3_read_s16(mp3)


def names(reply: Reply) -> list[str]:
    return [d.qualified_name for d in reply.directives]


def strict_validator() -> Callable[[Directive], object]:
    """``validate_directive_strict`` once protocol/schema.py exists; skip until then."""
    schema = pytest.importorskip("opencic.protocol.schema")
    return schema.validate_directive_strict  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- Recognize


def test_what_time_is_it_speaks_and_shows(assistant: Assistant, fixed_now: datetime) -> None:
    reply = run(assistant.handle(recognize("what time is it"), DEVICE))
    assert names(reply) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
    speak, render = reply.directives
    assert speak.payload["format"] == "AUDIO_MPEG"
    assert speak.payload["ttsLang"] == "en"
    assert speak.payload["token"] and speak.payload["url"].startswith("cid:")
    assert render.payload == {"text": "It's 11:42 PM."}

    # The attachment is the one the url names, and it is real MP3 audio (B-MP-07, B-SR-09).
    assert len(reply.attachments) == 1
    attachment = reply.attachments[0]
    assert reply.attachment_for(speak) is attachment
    assert speak.payload["url"] == f"cid:{attachment.content_id}"
    assert attachment.content_type == "application/octet-stream"
    sound = decode(attachment.data)
    assert sound.nchannels == 1 and sound.sample_rate == 22050
    assert sound.duration > 0.3

    # Wire order of the CIC example: Speak, its audio, RenderText.
    assert [type(p).__name__ for p in reply.parts()] == ["Directive", "Attachment", "Directive"]


def test_every_directive_echoes_the_dialog_request_id(assistant: Assistant) -> None:
    # B-DI-07, across speech answers, control answers and the fallback.
    for text in [
        "what's the date",
        "hello",
        "help",
        "louder",
        "set the volume to 4",
        "mute",
        "unmute",
        "what's the weather",
    ]:
        dialog = f"dialog-{text}"
        reply = run(assistant.handle(recognize(text, dialog=dialog), DEVICE))
        assert reply.directives, text
        assert {d.dialog_request_id for d in reply.directives} == {dialog}, text
        assert len({d.header.message_id for d in reply.directives}) == len(reply.directives)


def test_recognize_without_dialog_id_sets_none(assistant: Assistant) -> None:
    reply = run(assistant.handle(recognize("hello", dialog=None), DEVICE))
    assert {d.dialog_request_id for d in reply.directives} == {None}


def test_the_device_zone_is_used(assistant: Assistant) -> None:
    tokyo = ContextObject("Device", "DeviceState", {"localTime": "2026-11-24T07:42:00+09:00"})
    reply = run(assistant.handle(recognize("what day is it", tokyo), DEVICE))
    assert reply.directives[1].payload["text"] == "Today is Tuesday, November 24, 2026."


def test_volume_change_is_a_control_directive_only(assistant: Assistant) -> None:
    # B-SR-11: no Speak for speaker-output changes.
    state = ContextObject(
        "Device",
        "DeviceState",
        {
            "volume": {
                "actions": ["Decrease", "Increase", "SetValue"],
                "min": 0,
                "max": 15,
                "value": 7,
            }
        },
    )
    reply = run(assistant.handle(recognize("set volume to 40 percent", state), DEVICE))
    assert names(reply) == ["DeviceControl.SetValue"]
    assert reply.directives[0].payload == {"target": "volume", "value": "6"}
    assert not reply.attachments
    for text, name in [
        ("louder", "DeviceControl.Increase"),
        ("quieter", "DeviceControl.Decrease"),
        ("mute", "PlaybackController.Mute"),
        ("unmute", "PlaybackController.Unmute"),
    ]:
        assert names(run(assistant.handle(recognize(text), DEVICE))) == [name]


def test_unsupported_volume_control_is_spoken(assistant: Assistant) -> None:
    state = ContextObject(
        "Device", "DeviceState", {"volume": {"actions": [], "min": 0, "max": 15, "value": 7}}
    )
    reply = run(assistant.handle(recognize("louder", state), DEVICE))
    assert names(reply) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]


def test_fallback_reply(assistant: Assistant) -> None:
    reply = run(assistant.handle(recognize("order a pizza"), DEVICE))
    assert names(reply) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
    assert "order a pizza" in reply.directives[1].payload["text"]
    assert decode(reply.attachments[0].data).duration > 1.0


def test_missing_or_non_text_payload_falls_back(assistant: Assistant) -> None:
    for payload in ({}, {"text": 42}):
        event = Event.create("TextRecognizer", "Recognize", payload, dialog_request_id=DIALOG)
        reply = run(assistant.handle(event, DEVICE))
        assert "didn't catch that" in reply.directives[1].payload["text"]


def test_failing_capability_apologises(synthesizer: SpeechSynthesizer, fixed_now: datetime) -> None:
    def broken(*_: Any) -> IntentResponse:
        raise RuntimeError("bug")

    table = {**CAPABILITIES, "GetTime": broken}
    assistant = Assistant(synthesizer, clock=lambda: fixed_now, capabilities=table)
    reply = run(assistant.handle(recognize("what time is it"), DEVICE))
    assert reply.directives[1].payload["text"].startswith("Sorry, something went wrong")


# --------------------------------------------------------------------------- other events


def test_speech_synthesizer_request_is_answered_with_speak(assistant: Assistant) -> None:
    event = Event.create("SpeechSynthesizer", "Request", {"text": "Hello there.", "lang": "en"})
    reply = run(assistant.handle(event, DEVICE))
    assert names(reply) == ["SpeechSynthesizer.Speak"]
    speak = reply.directives[0]
    assert speak.dialog_request_id is None  # the event carried none
    assert reply.attachment_for(speak) is reply.attachments[0]
    assert decode(reply.attachments[0].data).duration > 0.3


def test_speech_request_echoes_a_dialog_id_if_given(assistant: Assistant) -> None:
    event = Event.create(
        "SpeechSynthesizer", "Request", {"text": "Hi.", "lang": "en"}, dialog_request_id="d-42"
    )
    assert run(assistant.handle(event, DEVICE)).directives[0].dialog_request_id == "d-42"


def test_speech_request_in_a_language_without_a_voice_gets_an_english_apology(
    assistant: Assistant, synthesizer: SpeechSynthesizer
) -> None:
    # zh is a SpeechSynthesizer.Request lang (interfaces.yaml) we have no voice for.
    event = Event.create("SpeechSynthesizer", "Request", {"text": "你好", "lang": "zh"})
    reply = run(assistant.handle(event, DEVICE))
    assert reply.directives[0].payload["ttsLang"] == "en"
    assert reply.attachments[0].data == run(
        synthesizer.speak_mp3("Sorry, I can't speak that language.")
    )


def test_speech_request_edge_cases(assistant: Assistant) -> None:
    empty = Event.create("SpeechSynthesizer", "Request", {"text": "  ", "lang": "en"})
    assert run(assistant.handle(empty, DEVICE)).is_empty
    huge = Event.create("SpeechSynthesizer", "Request", {"text": "word " * 500, "lang": "en"})
    with pytest.raises(BadRequest):
        run(assistant.handle(huge, DEVICE))


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("SpeechSynthesizer", "SpeechStarted"),
        ("SpeechSynthesizer", "SpeechFinished"),
        ("System", "SynchronizeState"),
        ("DeviceControl", "ReportState"),
        ("Foo", "Bar"),
    ],
)
def test_unhandled_event_gets_an_empty_reply(
    assistant: Assistant, namespace: str, name: str
) -> None:
    reply = run(assistant.handle(Event.create(namespace, name, {}), DEVICE))
    assert reply.is_empty and not reply.attachments
    assert list(reply.parts()) == []


def test_routes_are_the_two_text_events(assistant: Assistant) -> None:
    assert assistant.handled_events == {"TextRecognizer.Recognize", "SpeechSynthesizer.Request"}


# --------------------------------------------------------------------------- schema


def test_outbound_directives_pass_the_strict_validator(assistant: Assistant) -> None:
    validate = strict_validator()
    state = ContextObject(
        "Device",
        "DeviceState",
        {
            "localTime": "2026-11-24T07:42:00+09:00",
            "volume": {
                "actions": ["Decrease", "Increase", "SetValue"],
                "min": 0,
                "max": 15,
                "value": 7,
            },
        },
    )
    seen: set[str] = set()
    for text in [
        "what time is it",
        "what's the date",
        "good morning",
        "help",
        "louder",
        "turn the volume up by 2",
        "quieter",
        "set the volume to 5",
        "max volume",
        "mute",
        "unmute",
        "what's the weather",
    ]:
        for directive in run(assistant.handle(recognize(text, state), DEVICE)).directives:
            validate(directive)
            seen.add(directive.qualified_name)
    request = Event.create("SpeechSynthesizer", "Request", {"text": "Hello.", "lang": "en"})
    for directive in run(assistant.handle(request, DEVICE)).directives:
        validate(directive)
    assert seen == {
        "SpeechSynthesizer.Speak",
        "Clova.RenderText",
        "DeviceControl.Increase",
        "DeviceControl.Decrease",
        "DeviceControl.SetValue",
        "PlaybackController.Mute",
        "PlaybackController.Unmute",
    }


# --------------------------------------------------------------------------- speed, cache


def test_cached_reply_is_fast_and_identical(assistant: Assistant) -> None:
    text = "what is today's date"
    first = run(assistant.handle(recognize(text), DEVICE))
    start = time.perf_counter()
    second = run(assistant.handle(recognize(text), DEVICE))
    elapsed = time.perf_counter() - start
    print(f"\ncached reply: {elapsed * 1000:.2f} ms")
    assert first.attachments[0].data == second.attachments[0].data
    # New ids every time, even for cached audio: a client matches parts by Content-ID.
    assert first.attachments[0].content_id != second.attachments[0].content_id
    assert first.directives[0].payload["token"] != second.directives[0].payload["token"]
    assert elapsed < 0.05


def test_concurrent_requests_share_one_synthesis(piper_voice: PiperTextToSpeech) -> None:
    synth = SpeechSynthesizer(piper_voice)  # a fresh, empty cache
    try:

        async def burst() -> list[bytes]:
            return await asyncio.gather(
                *(synth.speak_mp3("One voice for all of you.") for _ in range(8))
            )

        results = run(burst())
        stats = synth.stats()
        assert len(set(results)) == 1
        assert (stats.misses, stats.coalesced, stats.syntheses) == (1, 7, 1)
    finally:
        synth.close()


def test_warm_up_prerenders_fixed_phrases(piper_voice: PiperTextToSpeech) -> None:
    synth = SpeechSynthesizer(piper_voice)
    try:
        assistant = Assistant(synth)
        phrases = assistant.fixed_phrases()
        assert HELP_SPEECH in phrases and fallback.NOT_UNDERSTOOD in phrases
        run(synth.warm_up([HELP_SPEECH]))
        assert synth.cached(HELP_SPEECH) is not None
        before = synth.stats().syntheses
        reply = run(assistant.handle(recognize("help"), DEVICE))
        assert synth.stats().syntheses == before  # served from the cache
        assert reply.attachments[0].data == synth.cached(HELP_SPEECH)
    finally:
        synth.close()


def test_background_warm_up_joins_requests(piper_voice: PiperTextToSpeech) -> None:
    synth = SpeechSynthesizer(piper_voice)
    try:
        run(synth.warm_up([fallback.NOTHING_HEARD], wait=False))
        mp3 = synth.synthesize_mp3(fallback.NOTHING_HEARD)  # joins or hits, never repeats
        assert mp3 and synth.stats().syntheses == 1
    finally:
        synth.close()
