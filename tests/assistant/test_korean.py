"""Korean requests and answers (issue 4): the script or lang decides the language,
sentences/ko.yaml understands it, locales/ko.py answers in it, the Korean voice speaks
it (Speak ttsLang ko). Real hassil and the real voices (Piper, eSpeak NG), wrapped to
record what they were asked to say."""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime
from pathlib import Path
from typing import Any

import miniaudio
import pytest
import yaml
from support import backend
from support.clock import FIXED_NOW, fixed_clock

from opencic.assistant import Assistant
from opencic.assistant.capabilities import alerts
from opencic.assistant.capabilities.help import HELP_DISPLAY
from opencic.assistant.languages import Understanding, text_language
from opencic.assistant.locales import locale_for
from opencic.assistant.locales.ko import Korean, native, sino
from opencic.assistant.turn import DeviceContext
from opencic.assistant.understanding import IntentRecognizer
from opencic.assistant.voice import SpeechInput
from opencic.protocol.errors import BadRequest
from opencic.protocol.messages import Event
from opencic.speech import PiperTextToSpeech, SpeechSynthesizer
from opencic.speech.espeak import EspeakTextToSpeech
from opencic.speech.languages import LanguageRouter
from opencic.speech.vad import SileroVad
from opencic.state.base import Store
from opencic.state.store import create_store

DEVICE = DeviceContext("korean-speaker")


@functools.cache
def _real_voices() -> tuple[SpeechSynthesizer, SpeechSynthesizer]:
    """The real engines (Piper for English, eSpeak NG for Korean), loaded once."""
    return SpeechSynthesizer(PiperTextToSpeech()), SpeechSynthesizer(EspeakTextToSpeech("ko"))


class RecordingVoice:
    """A real voice that also notes what it was asked to say."""

    def __init__(self, inner: SpeechSynthesizer) -> None:
        self.inner = inner
        self.said: list[str] = []

    async def speak_mp3(self, text: str) -> bytes:
        self.said.append(text)
        return await self.inner.speak_mp3(text)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def korean() -> IntentRecognizer:
    return Understanding(IntentRecognizer(), ["ko"]).recognizer("ko")


def text_event(text: str, **payload: Any) -> Event:
    return Event.create("TextRecognizer", "Recognize", {"text": text, **payload},
                        dialog_request_id="d-ko")


# --------------------------------------------------------------------------- language


@pytest.mark.parametrize(("text", "lang"), [
    ("몇 시야", "ko"), ("what time is it", "en"), ("볼륨 up", "ko"), ("", "en"),
    ("ㅎㅇ", "ko"), ("今何時", "en"),  # no Japanese yet: anything but Hangul is English
])
def test_typed_text_language_is_its_script(text: str, lang: str) -> None:
    assert text_language(text) == lang
    assert text_language(text, available=("en",)) == "en"


# --------------------------------------------------------------------------- understanding


KOREAN_REQUESTS = [
    ("지금 몇 시야", "GetTime", {}),
    ("몇시예요?", "GetTime", {}),
    ("현재 시간 알려 줘", "GetTime", {}),
    ("오늘 날짜가 어떻게 돼", "GetDate", {}),
    ("오늘 며칠이야", "GetDate", {}),
    ("오늘 무슨 요일이야", "GetDate", {}),
    ("안녕하세요", "Greeting", {}),
    ("좋은 아침", "Greeting", {"part_of_day": "morning"}),
    ("잘 지내?", "Greeting", {"kind": "how_are_you"}),
    ("도움말", "Help", {}),
    ("뭘 할 수 있어?", "Help", {}),
    ("볼륨 올려 줘", "VolumeUp", {}),
    ("소리 키워 주세요", "VolumeUp", {}),
    ("볼륨 3 올려줘", "VolumeUp", {"amount": 3, "unit": "step"}),
    ("볼륨 20퍼센트 올려 줘", "VolumeUp", {"amount": 20, "unit": "percent"}),
    ("볼륨 줄여 줘", "VolumeDown", {}),
    ("소리 좀 낮춰 주세요", "VolumeDown", {}),
    ("볼륨 5로 설정해 줘", "VolumeSet", {"level": 5, "unit": "step"}),
    ("볼륨을 40퍼센트로 맞춰 줘", "VolumeSet", {"level": 40, "unit": "percent"}),
    ("볼륨 최대로", "VolumeSet", {"level": 100, "unit": "percent"}),
    ("볼륨 조절해 줘", "VolumeSet", {}),
    ("음소거해 줘", "Mute", {}),
    ("음소거 해제해 줘", "Unmute", {}),
    ("7시 30분에 알람 맞춰 줘", "SetAlarm", {"hour": 7, "minute": 30}),
    ("오후 3시 반에 알람 맞춰 줘", "SetAlarm", {"meridiem": "pm", "hour": 3, "minute": 30}),
    ("알람 맞춰 줘", "SetAlarm", {}),
    ("5분 타이머 맞춰 줘", "SetTimer", {"duration": 5, "unit": "minute"}),
    ("타이머 10초 맞춰 줘", "SetTimer", {"duration": 10, "unit": "second"}),
    ("알람 꺼", "StopAlert", {"kind": "ALARM"}),
    ("타이머 모두 취소해 줘", "CancelAlerts", {"kind": "TIMER"}),
    ("알람 뭐 있어?", "ListAlerts", {"kind": "ALARM"}),
    ("알람이랑 타이머 다 취소해 줘", "CancelAlerts", {}),
    ("치킨 요시아", "Fallback", {}),
]


@pytest.mark.parametrize(("text", "name", "slots"), KOREAN_REQUESTS)
def test_korean_requests(korean: IntentRecognizer, text: str, name: str,
                         slots: dict[str, Any]) -> None:
    result = korean.recognize(text)
    assert (result.name, dict(result.slots), result.lang) == (name, slots, "ko")


@pytest.mark.parametrize(("text", "expecting", "slots"), [
    ("5", "AnswerLevel", {"level": 5, "unit": "step"}),
    ("5로 해 줘", "AnswerLevel", {"level": 5, "unit": "step"}),
    ("7시 반", "AnswerTime", {"hour": 7, "minute": 30}),
    ("오후 3시", "AnswerTime", {"meridiem": "pm", "hour": 3}),
    ("10분", "AnswerDuration", {"duration": 10, "unit": "minute"}),
])
def test_korean_answers_only_when_expected(korean: IntentRecognizer, text: str, expecting: str,
                                           slots: dict[str, Any]) -> None:
    result = korean.recognize(text, {"expecting": expecting})
    assert (result.name, dict(result.slots)) == (expecting, slots)
    assert korean.recognize("7시 반").name == "Fallback"


def test_korean_templates_use_the_english_intent_names() -> None:
    from importlib import resources

    def names(lang: str) -> set[str]:
        text = resources.files("opencic.assistant").joinpath("sentences", f"{lang}.yaml").read_text()
        return set(yaml.safe_load(text)["intents"])

    assert names("ko") == names("en")


# --------------------------------------------------------------------------- phrases


def test_number_words() -> None:
    assert [sino(n) for n in (0, 1, 10, 11, 24, 30, 2026)] == [
        "영", "일", "십", "십일", "이십사", "삼십", "이천이십육"]
    assert [native(n) for n in (1, 2, 3, 4, 12, 20, 24, 100)] == [
        "한", "두", "세", "네", "열두", "스무", "스물네", "백"]


def test_every_fixed_phrase_has_a_korean_translation() -> None:
    english = Assistant(RecordingVoice(_real_voices()[0])).fixed_phrases()
    extra = (HELP_DISPLAY, "Good night! Sleep well.", "Done.",
             "I'm doing well, thanks for asking. How can I help you?")
    table = Korean.phrases
    missing = [p for p in (*english, *extra) if p not in table and p != english[-1]]
    assert not missing  # english[-1] is the no-voice apology: always English
    assert all(any("\uac00" <= c <= "\ud7a3" for c in table[p]) for p in table)


def test_korean_clock_and_date() -> None:
    ko = locale_for("ko")
    assert ko.clock(datetime(2026, 1, 1, 19, 30)) == (
        "지금은 오후 일곱 시 삼십 분이에요.", "지금은 오후 7시 30분이에요.")
    assert ko.clock(datetime(2026, 1, 1, 0, 0)) == ("지금은 오전 열두 시예요.", "지금은 오전 12시예요.")
    assert ko.date(datetime(2026, 6, 10)) == (
        "오늘은 이천이십육 년 유월 십 일 수요일이에요.", "오늘은 2026년 6월 10일 수요일이에요.")
    assert locale_for("ko-KR") is ko and locale_for("xx").lang == "en"


# --------------------------------------------------------------------------- the assistant


def make_assistant(store: Store | None = None) -> tuple[Assistant, RecordingVoice, RecordingVoice]:
    english, korean = (RecordingVoice(v) for v in _real_voices())
    assistant = Assistant(english, clock=fixed_clock, voices={"ko": korean}, store=store)
    return assistant, english, korean


def names_and_payloads(reply: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(d.qualified_name, d.payload) for d in reply.directives]


def test_typed_korean_is_answered_in_korean_speech() -> None:
    assistant, english, korean = make_assistant()
    reply = run(assistant.handle(text_event("몇 시야"), DEVICE))
    (speak, payload), (render, shown) = names_and_payloads(reply)
    assert (speak, render) == ("SpeechSynthesizer.Speak", "Clova.RenderText")
    assert payload["ttsLang"] == "ko" and payload["format"] == "AUDIO_MPEG"
    assert FIXED_NOW.hour == 23 and FIXED_NOW.minute == 42
    assert shown["text"] == "지금은 오후 11시 42분이에요."
    assert korean.said == ["지금은 오후 열한 시 사십이 분이에요."] and english.said == []
    assert miniaudio.decode(reply.attachments[0].data).duration > 1.0  # real Korean MP3
    # English is unchanged, and the device's language follows its latest request.
    reply = run(assistant.handle(text_event("what time is it"), DEVICE))
    assert reply.directives[0].payload["ttsLang"] == "en"
    assert english.said == ["It's 11 42 PM."]


def test_fixed_answers_and_fallback_are_korean() -> None:
    assistant, _, korean = make_assistant()
    reply = run(assistant.handle(text_event("블라블라 뭐지"), DEVICE))
    assert korean.said == [Korean.phrases[
        "Sorry, I didn't understand that. You can say help to hear what I can do."]]
    assert '"블라블라 뭐지"' in reply.directives[1].payload["text"]


def test_volume_needs_no_speech_in_korean_either() -> None:  # B-SR-11
    assistant, english, korean = make_assistant()
    reply = run(assistant.handle(text_event("볼륨 5로 설정해 줘"), DEVICE))
    assert names_and_payloads(reply) == [
        ("DeviceControl.SetValue", {"target": "volume", "value": "5"})]
    assert korean.said == english.said == []


def test_a_korean_question_takes_a_korean_answer() -> None:  # B-SR-05/06
    assistant, _, korean = make_assistant()
    reply = run(assistant.handle(text_event("볼륨 조절해 줘"), DEVICE))
    assert korean.said == ["볼륨을 얼마로 맞출까요?"]
    expect = reply.directives[-1]
    assert expect.qualified_name == "SpeechRecognizer.ExpectSpeech"
    follow_up = text_event("5로 해 줘", speechId=expect.payload["expectSpeechId"])
    reply = run(assistant.handle(follow_up, DEVICE))
    assert names_and_payloads(reply) == [
        ("DeviceControl.SetValue", {"target": "volume", "value": "5"})]


def test_korean_speech_request_uses_the_korean_voice() -> None:
    assistant, english, korean = make_assistant()
    event = Event.create("SpeechSynthesizer", "Request", {"text": "안녕하세요", "lang": "ko"})
    reply = run(assistant.handle(event, DEVICE))
    assert reply.directives[0].payload["ttsLang"] == "ko"
    assert korean.said == ["안녕하세요"] and english.said == []


def test_without_a_korean_voice_the_answer_is_shown_only() -> None:
    english = RecordingVoice(_real_voices()[0])
    assistant = Assistant(english, clock=fixed_clock)
    reply = run(assistant.handle(text_event("안녕하세요"), DEVICE))
    assert names_and_payloads(reply) == [
        ("Clova.RenderText", {"text": "안녕하세요! 무엇을 도와드릴까요?"})]
    assert english.said == []


def test_korean_voice_is_refused_with_the_reason_when_its_model_is_missing() -> None:
    class English:
        languages = frozenset({"en"})

        def start(self, language: str = "en", *, hint: str | None = None) -> Any:
            raise AssertionError("not reached")

    router = LanguageRouter({"en": English()},  # type: ignore[dict-item]
                            unavailable={"ko": "lang 'ko' needs the multilingual speech model"})
    assistant = Assistant(RecordingVoice(_real_voices()[0]), speech_input=SpeechInput(router, SileroVad()))  # type: ignore[arg-type]
    event = Event.create("SpeechRecognizer", "Recognize",
                         {"lang": "ko", "format": "AUDIO_L16_RATE_16000_CHANNELS_1"},
                         dialog_request_id="d")
    with pytest.raises(BadRequest, match="needs the multilingual speech model"):
        assistant.start_voice(event, DEVICE)
    event = Event.create("SpeechRecognizer", "Recognize", {"lang": "ja"}, dialog_request_id="d")
    with pytest.raises(BadRequest, match="unsupported lang 'ja'"):
        assistant.start_voice(event, DEVICE)


# --------------------------------------------------------------------------- alerts


def test_alarm_and_timer_confirmations_in_korean() -> None:
    ko = locale_for("ko")
    alarm = alerts.set_alert_payload(alerts.ALARM, FIXED_NOW.replace(hour=7, minute=30, day=24))
    assert alerts.confirmation(alarm, FIXED_NOW, ko)[0] == "내일 오전 일곱 시 삼십 분에 알람을 맞췄어요."
    timer = alerts.set_alert_payload(alerts.TIMER, FIXED_NOW.replace(minute=47))
    assert alerts.confirmation(timer, FIXED_NOW, ko)[0] == "오 분 타이머를 맞췄어요."
    assert alerts.failure(alerts.TIMER, ko) == "죄송해요, 이 기기에 타이머를 맞추지 못했어요."


def test_cancel_and_list_in_korean(korean: IntentRecognizer) -> None:
    from opencic.protocol.messages import ContextObject

    reported = [
        alerts.set_alert_payload(alerts.ALARM, FIXED_NOW.replace(hour=7, minute=30, day=24),
                                 token="a-1"),
        alerts.set_alert_payload(alerts.TIMER, FIXED_NOW.replace(minute=47), token="t-1"),
    ]
    context = [ContextObject("Alerts", "AlertsState", {"allAlerts": reported, "activeAlerts": []})]
    event = Event.create("TextRecognizer", "Recognize", {"text": "x"}, dialog_request_id="d",
                         context=context)
    listed = alerts.list_alerts(korean.recognize("알람 뭐 있어?"), event, DEVICE, fixed_clock)
    assert listed.speech == "알람이 한 개 있어요: 내일 오전 일곱 시 삼십 분 알람."
    everything = alerts.list_alerts(korean.recognize("알람이랑 타이머 뭐 있어?"), event, DEVICE,
                                    fixed_clock)
    assert everything.speech == ("알람이나 타이머가 두 개 있어요: 오후 열한 시 사십칠 분 타이머, "
                                 "내일 오전 일곱 시 삼십 분 알람.")
    cancelled = alerts.cancel_alerts(korean.recognize("타이머 모두 취소해 줘"), event, DEVICE,
                                     fixed_clock)
    assert cancelled.speech == "타이머 한 개를 취소했어요."


def test_set_alert_succeeded_is_confirmed_in_the_devices_language(tmp_path: Path) -> None:
    """SetAlertSucceeded has no language: the device's last request decides (ko here).
    On a real (SQLite) store: the alert is stored by the request, confirmed after."""
    database = backend.database_for(tmp_path)  # outside the loop: it may create one

    async def go() -> None:
        async with create_store(database, tmp_path) as store:
            await store.devices.ensure([DEVICE.device_id])
            assistant, _, korean = make_assistant(store=store)
            reply = await assistant.handle(text_event("7시 30분에 알람 맞춰 줘"), DEVICE)
            (set_alert,) = reply.directives
            ref = {"token": set_alert.payload["token"], "type": "ALARM"}
            succeeded = Event.create("Alerts", "SetAlertSucceeded", ref)
            confirmed = await assistant.handle(succeeded, DEVICE)
            assert confirmed.directives[0].payload["ttsLang"] == "ko"
            assert korean.said[-1].endswith("알람을 맞췄어요.")
            # It continues the request's dialogue (B-DI-04).
            assert confirmed.directives[0].dialog_request_id == set_alert.dialog_request_id

    asyncio.run(go())
