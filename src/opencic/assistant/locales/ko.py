"""Korean (한국어): the fixed phrases' translations and how values are said.

Speech and display: numbers in what is spoken are written out in Hangul, because the
Korean voice (eSpeak NG) reads digits as Sino-Korean numbers, and Korean says hours
and counts with native numbers ("일곱 시", "두 개") but minutes, dates and seconds
with Sino-Korean ones ("삼십 분", "이십사 일"). Where the display has its own text
(time, date) it uses digits, as Korean is normally written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType

from .en import ALARM, TIMER, English

_SINO = "영일이삼사오육칠팔구"
_NATIVE_ONES = ("", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉")
_NATIVE_TENS = ("", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔")
_WEEKDAYS = ("월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일")
_MONTHS = {6: "유월", 10: "시월"}  # the two months whose Sino number changes form
_NOUN = {ALARM: "알람", TIMER: "타이머"}
_ANY_ALERT = "알람이나 타이머"

OFFER = "무엇을 도와드릴까요?"


def sino(number: int) -> str:
    """Sino-Korean number words: 24 -> 이십사, 2026 -> 이천이십육 (0-9999)."""
    if number == 0:
        return "영"
    words = []
    for size, unit in ((1000, "천"), (100, "백"), (10, "십")):
        digit, number = divmod(number, size)
        if digit:
            words.append(("" if digit == 1 else _SINO[digit]) + unit)
    if number:
        words.append(_SINO[number])
    return "".join(words)


def native(number: int) -> str:
    """Native Korean numbers in their form before a counter: 1 -> 한, 20 -> 스무,
    24 -> 스물네 (1-99; other numbers are said in Sino-Korean)."""
    if not 1 <= number <= 99:
        return sino(number)
    tens, ones = divmod(number, 10)
    if tens == 2 and ones == 0:
        return "스무"
    return _NATIVE_TENS[tens] + _NATIVE_ONES[ones]


def _has_final_consonant(word: str) -> bool:
    """Whether the last Hangul syllable ends in a consonant (이/가, 을/를, 은/는)."""
    last = word[-1:]
    return bool(last) and "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28 != 0


def _subject(word: str) -> str:
    return word + ("이" if _has_final_consonant(word) else "가")


def _object(word: str) -> str:
    return word + ("을" if _has_final_consonant(word) else "를")


def _meridiem(hour: int) -> str:
    return "오전" if hour < 12 else "오후"


def spoken_clock(hour: int, minute: int) -> str:
    """'오후 일곱 시 삼십 분' for 19:30."""
    words = f"{_meridiem(hour)} {native(hour % 12 or 12)} 시"
    return f"{words} {sino(minute)} 분" if minute else words


def spoken_duration(seconds: int) -> str:
    """'한 시간 오 분', '삼십 초': hours in native numbers, minutes and seconds Sino."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    words = []
    if hours:
        words.append(f"{native(hours)} 시간")
    if minutes:
        words.append(f"{sino(minutes)} 분")
    if secs or not words:
        words.append(f"{sino(secs)} 초")
    return " ".join(words)


def _noun(kind: str | None) -> str:
    return _NOUN.get(kind or "", _ANY_ALERT)


class Korean(English):
    lang = "ko"
    phrases: Mapping[str, str] = MappingProxyType({
        # greeting
        "Hello! How can I help you?": f"안녕하세요! {OFFER}",
        "Good morning! How can I help you?": f"좋은 아침이에요! {OFFER}",
        "Good afternoon! How can I help you?": f"좋은 오후예요! {OFFER}",
        "Good evening! How can I help you?": f"좋은 저녁이에요! {OFFER}",
        "Good night! Sleep well.": "안녕히 주무세요!",
        "I'm doing well, thanks for asking. How can I help you?":
            f"잘 지내요, 물어봐 주셔서 고마워요. {OFFER}",
        # help
        "You can ask me what time it is or what today's date is. I can also turn the "
        "volume up or down, set it to a level or a percentage, or mute and unmute the "
        "speaker.":
            "지금 몇 시인지, 오늘이 며칠인지 물어보세요. 볼륨을 올리거나 내리고, 단계나 "
            "퍼센트로 맞추고, 음소거하거나 해제할 수도 있어요.",
        'Try: "What time is it?", "What\'s the date today?", "Louder", "Volume down", '
        '"Set the volume to 5", "Set the volume to 40 percent", "Mute", "Unmute".':
            '예: "지금 몇 시야?", "오늘 며칠이야?", "볼륨 올려 줘", "볼륨 줄여 줘", '
            '"볼륨 5로 설정해 줘", "볼륨 40퍼센트로 맞춰 줘", "음소거해 줘", "음소거 해제해 줘".',
        # fallback
        "Sorry, I didn't understand that. You can say help to hear what I can do.":
            "죄송해요, 잘 이해하지 못했어요. 도움말이라고 말하면 제가 할 수 있는 일을 알려 드려요.",
        "Sorry, I didn't catch that. You can say help to hear what I can do.":
            "죄송해요, 잘 듣지 못했어요. 도움말이라고 말하면 제가 할 수 있는 일을 알려 드려요.",
        # volume
        "Sorry, I can't change the volume on this device.": "이 기기에서는 볼륨을 바꿀 수 없어요.",
        "The volume is already at the maximum.": "볼륨이 이미 최대예요.",
        "The volume is already at the minimum.": "볼륨이 이미 최소예요.",
        "Sorry, I didn't catch the volume level.": "죄송해요, 볼륨 크기를 알아듣지 못했어요.",
        "What volume level would you like?": "볼륨을 얼마로 맞출까요?",
        # alarms and timers
        "For what time?": "몇 시로 맞출까요?",
        "For how long?": "얼마 동안 맞출까요?",
        "Sorry, I didn't catch a time I can set an alarm for.":
            "죄송해요, 알람을 맞출 시간을 알아듣지 못했어요.",
        "Sorry, timers can run from one second to twenty-four hours.":
            "죄송해요, 타이머는 일 초부터 스물네 시간까지 맞출 수 있어요.",
        "Nothing is ringing right now.": "지금 울리는 알람이 없어요.",
        "You have no alarms.": "맞춰 둔 알람이 없어요.",
        "You have no timers.": "맞춰 둔 타이머가 없어요.",
        "You have no alarms or timers.": "맞춰 둔 알람이나 타이머가 없어요.",
        "Done.": "완료했어요.",
        # the assistant itself
        "Sorry, something went wrong. Please try again.": "죄송해요, 문제가 생겼어요. 다시 말씀해 주세요.",
        "To use alarms and timers, please sign in to your account first.":
            "알람과 타이머를 쓰려면 먼저 계정에 로그인해 주세요.",
        "Sorry, I didn't hear anything.": "죄송해요, 아무 말도 듣지 못했어요.",
    })

    def clock(self, moment: datetime) -> tuple[str, str]:
        hour12 = moment.hour % 12 or 12
        display = f"{_meridiem(moment.hour)} {hour12}시"
        if moment.minute:
            display += f" {moment.minute}분"
        ending = "이에요." if moment.minute else "예요."  # 분 ends in a consonant, 시 not
        return f"지금은 {spoken_clock(moment.hour, moment.minute)}{ending}", f"지금은 {display}{ending}"

    def date(self, moment: datetime) -> tuple[str, str]:
        weekday = _WEEKDAYS[moment.weekday()]
        month = _MONTHS.get(moment.month, f"{sino(moment.month)}월")
        speech = f"오늘은 {sino(moment.year)} 년 {month} {sino(moment.day)} 일 {weekday}이에요."
        display = f"오늘은 {moment.year}년 {moment.month}월 {moment.day}일 {weekday}이에요."
        return speech, display

    def not_understood(self, text: str) -> str:
        return f'죄송해요, "{text}"의 뜻을 이해하지 못했어요. "지금 몇 시야?"라고 물어보거나 ' \
            '"도움말"이라고 말해 보세요.'

    def cancelled(self, count: int, kind: str | None) -> str:
        return f"{_noun(kind)} {native(count)} 개를 취소했어요."

    def alert_time(self, when: datetime, now: datetime) -> str:
        local = when.astimezone(now.tzinfo)
        days = (local.date() - now.date()).days
        day = "내일 " if days == 1 else f"{_WEEKDAYS[local.weekday()]} " if days > 1 else ""
        return day + spoken_clock(local.hour, local.minute)

    def alert_list(self, items: Sequence[tuple[datetime, str]], now: datetime,
                   kind: str | None, more: int) -> str:
        said = ", ".join(f"{self.alert_time(w, now)} {_noun(t)}" for w, t in items)
        extra = f", 그리고 {native(more)} 개 더" if more else ""
        total = len(items) + more
        return f"{_subject(_noun(kind))} {native(total)} 개 있어요: {said}{extra}."

    def alarm_set(self, when: datetime, now: datetime, repeat_days: str | None = None) -> str:
        if repeat_days:
            local = when.astimezone(now.tzinfo)
            return f"{self.repeat(repeat_days)} {spoken_clock(local.hour, local.minute)}에 알람을 맞췄어요."
        return f"{self.alert_time(when, now)}에 알람을 맞췄어요."

    def repeat(self, days: str) -> str:
        ordered = "".join(sorted(days))
        named = {"0123456": "매일", "01234": "평일마다", "56": "주말마다"}
        if ordered in named:
            return named[ordered]
        return "매주 " + ", ".join("월화수목금토일"[int(d)] + "요일" for d in ordered)

    def timer_set(self, seconds: int) -> str:
        return f"{spoken_duration(seconds)} 타이머를 맞췄어요."

    def set_failed(self, kind: str) -> str:
        return f"죄송해요, 이 기기에 {_object(_noun(kind))} 맞추지 못했어요."
