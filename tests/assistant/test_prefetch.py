"""Answer speech started from a voice request's speculative transcript (issue 4).

When the speculative decode at a pause is in, the answer's MP3 starts rendering while
the silence rule is still counting; the real answer then joins that render. The guess
must have no effect of its own: no dialogue change, nothing stored. Real engines: Piper,
Silero, Whisper tiny.en, speech from our own voice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from support.clock import fixed_clock
from support.voice import utterance

from opencic.assistant import Assistant, DeviceContext, IntentRecognizer
from opencic.assistant.locales import locale_for
from opencic.assistant.voice import SpeechInput, VoiceTurn
from opencic.protocol.messages import Directive, Event
from opencic.speech import PiperTextToSpeech, SpeechSynthesizer
from opencic.speech.audio import CAPTURE_FORMAT, CHUNK_BYTES, iter_chunks

DEVICE = DeviceContext("prefetch-device", "OpenCIC-Simulator/0.1.0 (Linux; x86_64)")
DIALOG = "5b1f8f0e-7c55-4a53-8f3e-0f6d2a9b1c01"
# A long silence rule: the guess at the pause is surely in before it, however loaded
# the machine, so what is asserted does not depend on how fast a decode ran.
SLOW_RULE_MS = 2000.0


@pytest.fixture
def own_synthesizer(piper_voice: PiperTextToSpeech) -> Iterator[SpeechSynthesizer]:
    """A synthesizer of this test's own: its cache counts start at zero."""
    synth = SpeechSynthesizer(piper_voice)
    yield synth
    synth.close()


@pytest.fixture
def fresh_assistant(own_synthesizer: SpeechSynthesizer,
                    recognizer: IntentRecognizer) -> Assistant:
    return Assistant(own_synthesizer, clock=fixed_clock, intents=recognizer)


def text_event(text: str, **payload: Any) -> Event:
    return Event.create("TextRecognizer", "Recognize", {"text": text, **payload},
                        dialog_request_id=DIALOG)


def test_the_prefetched_words_are_the_answer_and_the_answer_joins_their_render(
    fresh_assistant: Assistant, own_synthesizer: SpeechSynthesizer
) -> None:
    async def go() -> None:
        event = text_event("what time is it")
        preview = fresh_assistant.preview_answer("what time is it", event, DEVICE)
        words = preview.words
        assert preview.complete and words is not None and words.startswith("It's")
        assert own_synthesizer.stats().misses == 1  # rendering, in the background
        response = fresh_assistant.answer("what time is it", event, DEVICE)
        assert locale_for("en").say(response.speech or "") == words
        reply = await fresh_assistant.finish(response, event, DEVICE)
        assert [d.qualified_name for d in reply.directives][:2] == [
            "SpeechSynthesizer.Speak", "Clova.RenderText"]
        stats = own_synthesizer.stats()
        assert stats.syntheses == 1 and stats.misses == 1  # the answer rendered nothing new
        assert stats.hits + stats.coalesced == 1

    asyncio.run(go())


def test_a_prefetch_changes_no_dialogue(fresh_assistant: Assistant) -> None:
    """B-SR-05/06: a guess neither asks a question nor ends the pending one."""
    preview = fresh_assistant.preview_answer("set the volume", text_event("set the volume"),
                                             DEVICE)
    question = preview.words
    assert not preview.complete  # it would ask: not a request to end early on
    assert question is not None and question.endswith("?")
    assert fresh_assistant.dialogue.peek(DEVICE.device_id) is None  # nothing was asked

    asked = fresh_assistant.answer("set the volume", text_event("set the volume"), DEVICE)
    pending = fresh_assistant.dialogue.peek(DEVICE.device_id)
    assert pending is not None and asked.speech == question
    follow_up = text_event("what time is it", speechId=pending.speech_id)
    fresh_assistant.preview_answer("what time is it", follow_up, DEVICE)
    assert fresh_assistant.dialogue.peek(DEVICE.device_id) is pending  # still pending


def test_a_guest_prefetches_the_sign_in_prompt(fresh_assistant: Assistant) -> None:
    guest = DeviceContext("guest-device", "OpenCIC-Simulator/0.1.0 (Linux; x86_64)",
                          guest=True)
    preview = fresh_assistant.preview_answer("set a timer for 5 minutes",
                                             text_event("set a timer for 5 minutes"), guest)
    assert preview.words is not None and "sign in" in preview.words


def test_a_request_not_understood_is_not_complete(fresh_assistant: Assistant) -> None:
    preview = fresh_assistant.preview_answer("tell me a joke", text_event("tell me a joke"),
                                             DEVICE)
    assert not preview.complete and preview.words


def voice_turn(engines: SpeechInput, synthesizer: SpeechSynthesizer,
               recognizer: IntentRecognizer, text: str,
               trail_ms: float = 1500.0) -> tuple[dict[str, Any], list[str], str]:
    """One voice request paced like a device (real time, so the speculative decode runs
    in the pause): the turn's summary, the interim directives, the answer's text."""
    assistant = Assistant(synthesizer, clock=fixed_clock, intents=recognizer,
                          speech_input=engines)
    event = Event.create("SpeechRecognizer", "Recognize",
                         {"lang": "en", "profile": "CLOSE_TALK", "format": CAPTURE_FORMAT},
                         dialog_request_id=DIALOG)

    async def go() -> tuple[dict[str, Any], list[str], str]:
        await engines.load()
        turn = VoiceTurn(assistant, engines, event, DEVICE, "en")
        sent: list[Directive] = []
        turn.interim = sent.append
        pcm = utterance(text, trail_ms=trail_ms)
        for index, part in enumerate(iter_chunks(pcm, CHUNK_BYTES), start=1):
            if turn.feed(part, index):
                sent.append(turn.stop_capture())
                break  # B-SR-02
            if turn.capture_stopped:
                break  # ended between parts: StopCapture already went out
            await asyncio.sleep(0.2)
        turn.end_of_audio()
        reply = await turn.reply()
        shown = next(d.payload["text"] for d in reply.directives
                     if d.qualified_name == "Clova.RenderText")
        return turn.summary(), [d.header.name for d in sent], shown

    return asyncio.run(go())


@pytest.fixture
def engines() -> Iterator[SpeechInput]:
    speech = SpeechInput.default(max_audio_seconds=8.0)
    yield speech
    speech.close()


def test_a_voice_turn_prefetches_its_answer_at_the_pause(
    own_synthesizer: SpeechSynthesizer, recognizer: IntentRecognizer, engines: SpeechInput
) -> None:
    no_early = SpeechInput(engines.recognizer, engines.vad, max_audio_seconds=8.0,
                           silence_ms=SLOW_RULE_MS)  # early_endpoint_ms 0
    summary, sent, shown = voice_turn(no_early, own_synthesizer, recognizer, "what time is it",
                                      trail_ms=SLOW_RULE_MS + 1000)
    assert shown.startswith("It's") and sent == ["StopCapture"]
    assert summary["speculative"] and summary["speech_prefetched"], summary
    assert not summary["early_end"]
    assert summary["endpoint_ms"] - summary["speech_end_ms"] >= SLOW_RULE_MS  # the whole rule
    stats = own_synthesizer.stats()
    assert stats.syntheses == 1 and stats.misses == 1, stats  # one render, shared


def early_engines(base: SpeechInput) -> SpeechInput:
    return SpeechInput(base.recognizer, base.vad, max_audio_seconds=8.0,
                       silence_ms=SLOW_RULE_MS, early_endpoint_ms=300.0)


def test_a_complete_request_ends_before_the_silence_rule(
    own_synthesizer: SpeechSynthesizer, recognizer: IntentRecognizer, engines: SpeechInput
) -> None:
    summary, sent, shown = voice_turn(early_engines(engines), own_synthesizer, recognizer,
                                      "what time is it", trail_ms=SLOW_RULE_MS + 1000)
    assert shown.startswith("It's") and sent == ["StopCapture"]  # once, either way
    assert summary["early_end"] and summary["speculative"], summary
    assert 300 <= summary["endpoint_ms"] - summary["speech_end_ms"] < SLOW_RULE_MS, summary


@pytest.mark.parametrize("text", ["set an alarm", "tell me a joke"])
def test_a_request_that_asks_or_is_not_understood_waits_for_the_rule(
    own_synthesizer: SpeechSynthesizer, recognizer: IntentRecognizer, engines: SpeechInput,
    text: str,
) -> None:
    """"Set an alarm ..." may go on ("... for seven"): only the silence rule ends it."""
    summary, sent, _ = voice_turn(early_engines(engines), own_synthesizer, recognizer, text,
                                  trail_ms=SLOW_RULE_MS + 1000)
    assert sent == ["StopCapture"]
    assert not summary["early_end"], summary
    assert summary["endpoint_ms"] - summary["speech_end_ms"] >= SLOW_RULE_MS, summary
