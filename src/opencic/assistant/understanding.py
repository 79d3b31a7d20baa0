"""Text to intent, driven by sentence templates as data (hassil).

The templates live in ``sentences/<lang>.yaml``; adding a phrasing is a data change, not
code. Matching is a pure function of the text, so one :class:`IntentRecognizer` is
shared by every request and thread.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hassil import Intents, recognize_best

FALLBACK = "Fallback"

# Every intent a request may start with; capabilities/__init__.py maps each to a handler.
INTENT_NAMES = (
    "GetTime",
    "GetDate",
    "Greeting",
    "Help",
    "VolumeUp",
    "VolumeDown",
    "VolumeSet",
    "Mute",
    "Unmute",
    "SetAlarm",
    "SetTimer",
    "StopAlert",
    "CancelAlerts",
    "ListAlerts",
)

# Answers to a question (SpeechRecognizer.ExpectSpeech), never requests on their own:
# their templates match only under ``requires_context: {expecting: <name>}``, and their
# slots complete the intent that asked (dialogue.PendingQuestion.complete).
ANSWER_CONTEXT_KEY = "expecting"
ANSWER_INTENT_NAMES = ("AnswerLevel", "AnswerTime", "AnswerDuration")

# Longer inputs are not commands we could understand; matching them would only cost time.
MAX_TEXT_LENGTH = 300
RECOGNITION_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class IntentResult:
    """What the user asked for: an intent name and its slot values."""

    name: str
    slots: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    text: str = ""
    lang: str = "en"  # the language it was understood in: capabilities answer in it

    @property
    def is_fallback(self) -> bool:
        return self.name == FALLBACK

    def slot(self, name: str, default: Any = None) -> Any:
        return self.slots.get(name, default)


def _home_assistant_skip_words(language: str) -> list[str]:
    """Generic filler words ("please", "can you") from home-assistant-intents, if installed."""
    try:
        import home_assistant_intents
    except ImportError:  # optional: our own templates work without it
        return []
    data = home_assistant_intents.get_intents(language) or {}
    words = data.get("skip_words") or []
    return [w for w in words if isinstance(w, str)]


def load_intents(
    language: str = "en",
    *,
    extra_files: Iterable[str | Path] = (),
    home_assistant_skip_words: bool = True,
) -> Intents:
    """Our templates for ``language`` merged with ``extra_files`` (later files win)."""
    source = resources.files("opencic.assistant").joinpath("sentences", f"{language}.yaml")
    with resources.as_file(source) as own_file:
        intents = Intents.from_files([own_file, *extra_files])
    if home_assistant_skip_words:
        known = set(intents.skip_words)
        intents.skip_words.extend(w for w in _home_assistant_skip_words(language) if w not in known)
    return intents


class IntentRecognizer:
    """Matches utterances against precompiled sentence templates."""

    def __init__(self, intents: Intents | None = None, *, language: str = "en") -> None:
        self.intents = intents if intents is not None else load_intents(language)
        self.language = self.intents.language
        self._cache: OrderedDict[
            tuple[str, tuple[tuple[str, str], ...]], tuple[str, Mapping[str, Any]]
        ] = OrderedDict()
        self._precompile()

    @classmethod
    def from_files(cls, *paths: str | Path, language: str = "en") -> IntentRecognizer:
        """Built-in templates plus site-specific ones (same hassil format)."""
        return cls(load_intents(language, extra_files=paths))

    @property
    def intent_names(self) -> frozenset[str]:
        """Intents a request can start with (answer intents excluded)."""
        return frozenset(self.intents.intents) - self.answer_intent_names

    @property
    def answer_intent_names(self) -> frozenset[str]:
        """Intents whose every template requires an ``expecting`` context: answers only."""
        return frozenset(
            name
            for name, intent in self.intents.intents.items()
            if intent.data
            and all(ANSWER_CONTEXT_KEY in data.requires_context for data in intent.data)
        )

    def recognize(self, text: str, context: Mapping[str, str] | None = None) -> IntentResult:
        """The best-matching intent, or ``Fallback`` when nothing matches.

        ``context`` is hassil's intent context: ``{"expecting": "AnswerLevel"}`` lets the
        answer templates of a pending question match as well as every request.
        """
        cleaned = " ".join(text.split())
        if not cleaned or len(cleaned) > MAX_TEXT_LENGTH:
            return IntentResult(FALLBACK, text=text, lang=self.language)
        if self.language == "en":
            cleaned = normalise_clock_times(cleaned, context)
        if self.intents.settings.ignore_whitespace:
            # hassil drops spaces between words itself but not around a number
            # ("볼륨 3 올려"), so a language that ignores whitespace gets none at all.
            cleaned = "".join(cleaned.split())
        # Matching costs ~0.1 ms and depends only on the text and the templates, while
        # devices repeat the same few requests: remember recent answers.
        context_key = tuple(sorted(context.items())) if context else ()
        key = (cleaned, context_key)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._match(cleaned, dict(context) if context else None)
            self._cache[key] = cached
            if len(self._cache) > RECOGNITION_CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return IntentResult(cached[0], cached[1], text, self.language)

    def _match(
        self, cleaned: str, context: dict[str, Any] | None = None
    ) -> tuple[str, Mapping[str, Any]]:
        result = recognize_best(
            cleaned, self.intents, language=self.language, intent_context=context
        )
        if result is None:
            return FALLBACK, MappingProxyType({})
        slots = {name: _plain(entity.value) for name, entity in result.entities.items()}
        return result.intent.name, MappingProxyType(slots)

    def _precompile(self) -> None:
        # hassil parses templates and computes its literal-text prefilter lazily, on the
        # first utterance that reaches them. Doing it here moves that cost to start-up,
        # off the first requests.
        for intent in self.intents.intents.values():
            for data in intent.data:
                rules = {**self.intents.expansion_rules, **data.expansion_rules}
                for sentence in data.sentences:
                    sentence.get_required_clauses(rules)
        # Slot lists (text tries, number words) also build their indexes on first use.
        for text in _WARM_UP:
            self.recognize(text)


# How Whisper writes spoken clock times: "7.30", "730." ("seven thirty"), "9.15pm",
# "7am". The templates read "7:30 pm"; these put the recogniser's forms into that one.
_GLUED_MERIDIEM = re.compile(r"\b(\d{1,2}(?::\d{2})?)([ap])\.?m\b\.?", re.IGNORECASE)
_DOTTED_TIME = re.compile(r"\b(\d{1,2})\.([0-5]\d)\b")
_RUN_TOGETHER_TIME = re.compile(r"\b([1-9]|1\d|2[0-3])([0-5]\d)\b")
_TIME_WORDS = re.compile(r"\b(alarm|wake)\b", re.IGNORECASE)


def normalise_clock_times(text: str, context: Mapping[str, Any] | None = None) -> str:
    """Clock times in the form the templates read. "730" only becomes 7:30 where a time
    is expected (an alarm request or the answer to "For what time?"): elsewhere it may
    be a number ("set the volume to 100")."""
    text = _GLUED_MERIDIEM.sub(lambda m: f"{m.group(1)} {m.group(2).lower()}m", text)
    text = _DOTTED_TIME.sub(r"\1:\2", text)
    expecting_time = context is not None and context.get(ANSWER_CONTEXT_KEY) == "AnswerTime"
    if expecting_time or _TIME_WORDS.search(text):
        text = _RUN_TOGETHER_TIME.sub(r"\1:\2", text)
    return text


def _plain(value: Any) -> Any:
    # Digits come back as floats and number words as ints ("5" -> 5.0, "five" -> 5);
    # one type for whole numbers keeps capabilities and logs simple.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_WARM_UP = ("what time is it", "good morning", "set the volume to five", "volume up by 20%")
