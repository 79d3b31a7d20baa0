"""Multi-turn dialogue, sans HTTP: a question + SpeechRecognizer.ExpectSpeech, then the
follow-up Recognize with speechId (B-SR-05, B-SR-06, B-DI-07, ambiguity #10).

Real hassil and our en.yaml, real Piper for the question; the dialogue state's clock is
a fake one so expiry is tested without waiting.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import pytest

from opencic.assistant import Assistant, DeviceContext, IntentRecognizer, IntentResult, Reply
from opencic.assistant.capabilities import volume
from opencic.assistant.dialogue import DialogueState
from opencic.assistant.turn import Question
from opencic.protocol.messages import ContextObject, Directive, Event
from opencic.protocol.schema import validate_directive_strict
from opencic.speech import SpeechSynthesizer

ASKED = "What volume level would you like?"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def device() -> DeviceContext:
    return DeviceContext(f"dev-{uuid.uuid4().hex[:8]}")


def dialog_id() -> str:
    return str(uuid.uuid4())


def recognize(
    text: str, dialog: str, *context: ContextObject, speech_id: str | None = None, **extra: Any
) -> Event:
    payload: dict[str, Any] = {"text": text, **extra}
    if speech_id is not None:
        payload["speechId"] = speech_id
        payload.setdefault("explicit", True)
    return Event.create(
        "TextRecognizer", "Recognize", payload, dialog_request_id=dialog, context=list(context)
    )


def names(reply: Reply) -> list[str]:
    return [d.qualified_name for d in reply.directives]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def talker(
    synthesizer: SpeechSynthesizer, recognizer: IntentRecognizer, fixed_now: datetime,
    clock: FakeClock,
) -> Assistant:
    """An assistant with its own dialogue state on a fake clock."""
    return Assistant(
        synthesizer,
        clock=lambda: fixed_now,
        intents=recognizer,
        dialogue=DialogueState(ttl_seconds=60.0, clock=clock),
    )


def ask_volume(talker: Assistant, who: DeviceContext, dialog: str) -> Directive:
    """"set the volume" -> the question, checked; its ExpectSpeech."""
    reply = asyncio.run(talker.handle(recognize("set the volume", dialog), who))
    assert names(reply) == [
        "SpeechSynthesizer.Speak",
        "Clova.RenderText",
        "SpeechRecognizer.ExpectSpeech",
    ]
    for directive in reply.directives:
        validate_directive_strict(directive)
        assert directive.dialog_request_id == dialog  # B-DI-07
    assert reply.directives[1].payload == {"text": ASKED}
    assert len(reply.attachments) == 1 and reply.attachments[0].data  # the spoken question
    expect = reply.directives[2]
    payload = expect.payload
    assert set(payload) == {"expectSpeechId", "explicit", "timeoutInMilliseconds"}
    assert payload["explicit"] is True
    assert payload["timeoutInMilliseconds"] == 8000
    assert isinstance(payload["expectSpeechId"], str) and payload["expectSpeechId"]
    return expect


# --------------------------------------------------------------------------- the question


def test_set_the_volume_without_a_level_asks_with_expect_speech(talker: Assistant) -> None:
    who, dialog = device(), dialog_id()
    first = ask_volume(talker, who, dialog)
    second = ask_volume(talker, who, dialog_id())
    assert first.payload["expectSpeechId"] != second.payload["expectSpeechId"]  # new id each time
    assert first.header.message_id != second.header.message_id
    assert len(talker.dialogue) == 1  # one pending question per device


def test_a_device_that_cannot_set_its_volume_is_told_at_once(talker: Assistant) -> None:
    state = ContextObject(
        "Device", "DeviceState", {"volume": {"min": 0, "max": 10, "value": 3, "actions": []}}
    )
    who = device()
    reply = asyncio.run(talker.handle(recognize("set the volume", dialog_id(), state), who))
    assert names(reply) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
    assert reply.directives[1].payload["text"] == volume.CANNOT
    assert talker.dialogue.peek(who.device_id) is None


def test_set_the_volume_with_a_level_does_not_ask(talker: Assistant) -> None:
    reply = asyncio.run(talker.handle(recognize("set the volume to 3", dialog_id()), device()))
    assert names(reply) == ["DeviceControl.SetValue"]


# --------------------------------------------------------------------------- the answer


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("five", "5"),
        ("5", "5"),
        ("Five.", "5"),
        ("level 5", "5"),
        ("50 percent", "5"),  # of the default 0-10 scale
        ("50%", "5"),
        ("to 7 please", "7"),
        ("make it 2", "2"),
        ("set the volume to 4", "4"),  # a complete request is fine as an answer too
    ],
)
@pytest.mark.parametrize("same_dialog", [True, False], ids=["same-dialog-id", "new-dialog-id"])
def test_the_follow_up_completes_the_request(
    talker: Assistant, answer: str, value: str, same_dialog: bool
) -> None:
    """B-SR-06 says reuse the dialogue ID, the examples use a new one: accept either and
    echo what the follow-up carried (ambiguity #10)."""
    who, dialog = device(), dialog_id()
    speech_id = ask_volume(talker, who, dialog).payload["expectSpeechId"]
    follow_dialog = dialog if same_dialog else dialog_id()
    reply = asyncio.run(
        talker.handle(recognize(answer, follow_dialog, speech_id=speech_id), who)
    )
    assert names(reply) == ["DeviceControl.SetValue"]  # B-SR-11: no Speak
    set_value = reply.directives[0]
    validate_directive_strict(set_value)
    assert set_value.payload == {"target": "volume", "value": value}
    assert set_value.dialog_request_id == follow_dialog
    assert talker.dialogue.peek(who.device_id) is None  # answered: no longer pending


def test_the_answer_is_read_on_the_follow_ups_device_scale(talker: Assistant) -> None:
    state = ContextObject(
        "Device", "DeviceState",
        {"volume": {"min": 0, "max": 30, "value": 3, "actions": ["SetValue"]}},
    )
    who, dialog = device(), dialog_id()
    speech_id = ask_volume(talker, who, dialog).payload["expectSpeechId"]
    reply = asyncio.run(
        talker.handle(recognize("50 percent", dialog, state, speech_id=speech_id), who)
    )
    assert reply.directives[0].payload == {"target": "volume", "value": "15"}


def test_a_bare_number_without_a_question_is_not_understood(talker: Assistant) -> None:
    reply = asyncio.run(talker.handle(recognize("five", dialog_id()), device()))
    assert names(reply) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]
    assert "five" in reply.directives[1].payload["text"]  # the fallback answer


@pytest.mark.parametrize("case", ["unknown", "expired", "other-device", "no-speech-id"])
def test_a_follow_up_that_answers_nothing_is_a_fresh_request(
    talker: Assistant, clock: FakeClock, case: str
) -> None:
    who, dialog = device(), dialog_id()
    speech_id: str | None = ask_volume(talker, who, dialog).payload["expectSpeechId"]
    sender = who
    if case == "unknown":
        speech_id = str(uuid.uuid4())
    elif case == "expired":
        clock.now += 61.0
    elif case == "other-device":
        sender = device()
    else:
        speech_id = None
    reply = asyncio.run(talker.handle(recognize("five", dialog, speech_id=speech_id), sender))
    assert names(reply) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]  # fallback
    assert all(d.dialog_request_id == dialog for d in reply.directives)
    if case != "other-device":
        # The device moved on: its question is over, even answered with the right id now.
        assert talker.dialogue.peek(who.device_id) is None


def test_another_request_instead_of_the_answer_is_handled_and_ends_the_question(
    talker: Assistant,
) -> None:
    who, dialog = device(), dialog_id()
    speech_id = ask_volume(talker, who, dialog).payload["expectSpeechId"]
    reply = asyncio.run(
        talker.handle(recognize("what time is it", dialog, speech_id=speech_id), who)
    )
    assert reply.directives[1].payload["text"].startswith("It's")
    again = asyncio.run(talker.handle(recognize("five", dialog, speech_id=speech_id), who))
    assert names(again) == ["SpeechSynthesizer.Speak", "Clova.RenderText"]  # fallback


def test_the_question_can_be_asked_again_and_answered(talker: Assistant) -> None:
    """An unclear answer ("set the volume" again) re-asks with a fresh expectSpeechId."""
    who, dialog = device(), dialog_id()
    first = ask_volume(talker, who, dialog).payload["expectSpeechId"]
    reply = asyncio.run(
        talker.handle(recognize("set the volume", dialog, speech_id=first), who)
    )
    second = reply.directives[-1].payload["expectSpeechId"]
    assert second != first
    done = asyncio.run(talker.handle(recognize("three", dialog, speech_id=second), who))
    assert done.directives[0].payload == {"target": "volume", "value": "3"}


# --------------------------------------------------------------------------- the state


def pending_question() -> Question:
    return Question("What volume level would you like?", "AnswerLevel")


def test_state_take_ends_the_question_and_checks_the_id() -> None:
    clock = FakeClock()
    state = DialogueState(ttl_seconds=10.0, clock=clock)
    asked = state.ask("d1", IntentResult("VolumeSet"), pending_question(), "dlg-1")
    assert asked.device_id == "d1" and asked.dialog_request_id == "dlg-1"
    assert state.peek("d1") is asked
    assert state.take("d1", "wrong") is None
    assert state.peek("d1") is None  # a wrong id ends it too
    asked = state.ask("d1", IntentResult("VolumeSet"), pending_question(), "dlg-1")
    assert state.take("d1", asked.speech_id) is asked
    assert state.take("d1", asked.speech_id) is None  # one answer per question


def test_state_expires_questions() -> None:
    clock = FakeClock()
    state = DialogueState(ttl_seconds=10.0, clock=clock)
    asked = state.ask("d1", IntentResult("VolumeSet"), pending_question(), None)
    clock.now += 9.9
    assert state.peek("d1") is asked
    clock.now += 0.1
    assert state.peek("d1") is None
    assert state.take("d1", asked.speech_id) is None
    # Expired entries are dropped as new questions come in.
    for n in range(5):
        state.ask(f"old-{n}", IntentResult("VolumeSet"), pending_question(), None)
    clock.now += 11.0
    state.ask("new", IntentResult("VolumeSet"), pending_question(), None)
    assert len(state) == 1


def test_state_is_bounded_oldest_first_out() -> None:
    state = DialogueState(ttl_seconds=60.0, max_devices=3, clock=FakeClock())
    asked = {
        n: state.ask(f"d{n}", IntentResult("VolumeSet"), pending_question(), None)
        for n in range(5)
    }
    assert len(state) == 3
    assert state.peek("d0") is None and state.peek("d1") is None
    assert state.take("d4", asked[4].speech_id) is asked[4]


def test_state_keeps_the_slots_so_far_and_the_answer_completes_them() -> None:
    state = DialogueState(clock=FakeClock())
    asked = state.ask("d1", IntentResult("VolumeSet", {"kind": "x"}), pending_question(), None)
    assert asked.context == {"expecting": "AnswerLevel"}
    assert asked.answers(IntentResult("AnswerLevel")) and not asked.answers(IntentResult("GetTime"))
    done = asked.complete(IntentResult("AnswerLevel", {"level": 5, "unit": "step"}, "five"))
    assert done.name == "VolumeSet" and done.text == "five"
    assert dict(done.slots) == {"kind": "x", "level": 5, "unit": "step"}


@pytest.mark.parametrize(
    ("text", "slots"),
    [
        ("five", {"level": 5, "unit": "step"}),
        ("5", {"level": 5, "unit": "step"}),
        ("level 5", {"level": 5, "unit": "step"}),
        ("50 percent", {"level": 50, "unit": "percent"}),
        ("volume 30%", {"level": 30, "unit": "percent"}),
    ],
)
def test_answer_templates_match_only_when_expected(
    recognizer: IntentRecognizer, text: str, slots: dict[str, Any]
) -> None:
    expected = recognizer.recognize(text, {"expecting": "AnswerLevel"})
    assert expected.name == "AnswerLevel" and dict(expected.slots) == slots
    assert recognizer.recognize(text).name != "AnswerLevel"
    assert "AnswerLevel" in recognizer.answer_intent_names
    assert "AnswerLevel" not in recognizer.intent_names
