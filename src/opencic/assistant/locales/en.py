"""English: the default locale, and the base every other language overrides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType

ALARM, TIMER = "ALARM", "TIMER"  # Alerts.SetAlert types (capabilities/alerts.py)


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def format_time(moment: datetime) -> tuple[str, str]:
    """(speech, display) for a time: "It's 11 42 PM." / "It's 11:42 PM."

    The speech form spells minutes the way people say them, because the voice reads
    "12:05" as "twelve zero five" and "7:00" as "seven zero zero".
    """
    hour = moment.hour % 12 or 12
    meridiem = "AM" if moment.hour < 12 else "PM"
    minute = moment.minute
    display = f"It's {hour}:{minute:02d} {meridiem}."
    if minute == 0:
        spoken = f"{hour} {meridiem}"
    elif minute < 10:
        spoken = f"{hour} oh {minute} {meridiem}"
    else:
        spoken = f"{hour} {minute} {meridiem}"
    return f"It's {spoken}.", display


def format_date(moment: datetime) -> tuple[str, str]:
    """(speech, display): "Today is Monday, November 23rd, 2026." / "... November 23, 2026." """
    weekday = moment.strftime("%A")
    month = moment.strftime("%B")
    display = f"Today is {weekday}, {month} {moment.day}, {moment.year}."
    speech = f"Today is {weekday}, {month} {_ordinal(moment.day)}, {moment.year}."
    return speech, display


WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def spoken_clock(local: datetime) -> str:
    """Just the clock time ("7:30 AM") of a local time."""
    return f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def spoken_time(when: datetime, now: datetime) -> str:
    """'7:30 AM', '7:30 AM tomorrow' or '7:30 AM on Friday', in the clock's zone."""
    local = when.astimezone(now.tzinfo)
    text = spoken_clock(local)
    days = (local.date() - now.date()).days
    if days == 1:
        return f"{text} tomorrow"
    if days > 1:
        return f"{text} on {local.strftime('%A')}"
    return text


def spoken_duration(seconds: int) -> str:
    parts = []
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " and ".join(parts) if parts else "0 seconds"


def noun(kind: str | None, count: int) -> str:
    word = {ALARM: "alarm", TIMER: "timer"}.get(kind or "", "alert")
    return word if count == 1 else word + "s"


class English:
    """How the assistant says things in English (and the interface of every locale)."""

    lang = "en"
    # Fixed phrase (English) -> this language; English needs none.
    phrases: Mapping[str, str] = MappingProxyType({})

    def say(self, text: str) -> str:
        """A fixed phrase in this language (unchanged when the table lacks it)."""
        return self.phrases.get(text, text)

    def clock(self, moment: datetime) -> tuple[str, str]:
        """(speech, display) telling the time ``moment``."""
        return format_time(moment)

    def date(self, moment: datetime) -> tuple[str, str]:
        """(speech, display) telling the date of ``moment``."""
        return format_date(moment)

    def not_understood(self, text: str) -> str:
        """What the display shows when ``text`` matched nothing."""
        return f'Sorry, I didn\'t understand "{text}". Try "What time is it?" or say "help".'

    def cancelled(self, count: int, kind: str | None) -> str:
        return f"Cancelled {count} {noun(kind, count)}."

    def alert_list(self, items: Sequence[tuple[datetime, str]], now: datetime,
                   kind: str | None, more: int) -> str:
        """``items``: (when, ALARM|TIMER), the first few; ``more``: how many are left out."""
        said = [f"{'an alarm' if t == ALARM else 'a timer'} at {spoken_time(w, now)}"
                for w, t in items]
        extra = f", and {more} more" if more else ""
        total = len(items) + more
        return f"You have {total} {noun(kind, total)}: " + ", ".join(said) + extra + "."

    def alarm_set(self, when: datetime, now: datetime, repeat_days: str | None = None) -> str:
        if repeat_days:
            return f"Alarm set for {spoken_clock(when.astimezone(now.tzinfo))} {self.repeat(repeat_days)}."
        return f"Alarm set for {spoken_time(when, now)}."

    def repeat(self, days: str) -> str:
        """``days``: weekday digits, Monday = 0 ("01234": "every weekday")."""
        named = {"0123456": "every day", "01234": "every weekday", "56": "on weekends"}
        if "".join(sorted(days)) in named:
            return named["".join(sorted(days))]
        names = [WEEKDAY_NAMES[int(d)] for d in sorted(days)]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        return f"every {listed}"

    def timer_set(self, seconds: int) -> str:
        return f"Timer set for {spoken_duration(seconds)}."

    def set_failed(self, kind: str) -> str:
        return f"Sorry, I couldn't set the {noun(kind, 1)} on this device."


Locale = English  # the interface capabilities code against
