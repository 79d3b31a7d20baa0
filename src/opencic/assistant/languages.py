"""Which language a request is in, and the sentence templates for it.

* ``SpeechRecognizer.Recognize`` says its language (``lang``, required by the
  contract): the audio is recognised in it and the answer is in it.
* ``TextRecognizer.Recognize`` has no ``lang`` (interfaces.yaml), so the text's script
  decides: Hangul is Korean, anything else English. Typed Korean is answered in Korean.
* Events that answer earlier requests (``Alerts.SetAlertSucceeded`` ...) carry no
  language either: they are answered in the language the device last spoke in
  (:class:`DeviceLanguages`).

Sentence templates are per language (``sentences/<lang>.yaml``, same intent names), each
compiled once per process and shared, like the English ones.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

from .understanding import IntentRecognizer

__all__ = ["DEFAULT_LANG", "DeviceLanguages", "Understanding", "request_language",
           "sentence_languages", "text_language"]

DEFAULT_LANG = "en"
DEVICE_MEMORY = 100_000  # devices whose last language is remembered (oldest out first)


def _is_hangul(char: str) -> bool:
    # Syllables, jamo and compatibility jamo (what a keyboard or a recogniser writes).
    return "\uac00" <= char <= "\ud7a3" or "\u1100" <= char <= "\u11ff" or "\u3130" <= char <= "\u318f"


def text_language(text: str, available: Iterable[str] = ("en", "ko")) -> str:
    """``ko`` for text with Hangul in it (when Korean is available), else English."""
    if "ko" in available and any(_is_hangul(c) for c in text):
        return "ko"
    return DEFAULT_LANG


def _lang(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value.split("-")[0].lower()


def request_language(namespace: str, payload: Mapping[str, Any], text: str,
                     available: Iterable[str]) -> str:
    """The language to understand and answer ``text`` of a Recognize event in."""
    available = tuple(available)
    if namespace == "SpeechRecognizer":
        lang = _lang(payload.get("lang"))
        if lang in available:
            return lang
    return text_language(text, available)


@functools.cache
def sentence_languages() -> frozenset[str]:
    """Languages with a ``sentences/<lang>.yaml`` in the package."""
    folder = resources.files("opencic.assistant").joinpath("sentences")
    return frozenset(
        entry.name.removesuffix(".yaml") for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


@functools.cache
def _shared_recognizer(lang: str) -> IntentRecognizer:
    return IntentRecognizer(language=lang)


class Understanding:
    """An :class:`IntentRecognizer` per language; ``english`` may be the caller's own."""

    def __init__(self, english: IntentRecognizer,
                 languages: Iterable[str] | None = None) -> None:
        wanted = sentence_languages() if languages is None else frozenset(languages)
        self._by_lang: dict[str, IntentRecognizer] = {DEFAULT_LANG: english}
        for lang in sorted(wanted - {DEFAULT_LANG}):
            self._by_lang[lang] = _shared_recognizer(lang)

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self._by_lang)

    def recognizer(self, lang: str) -> IntentRecognizer:
        return self._by_lang.get(lang) or self._by_lang[DEFAULT_LANG]


class DeviceLanguages:
    """The language each device last made a request in (memory only, bounded)."""

    def __init__(self, max_devices: int = DEVICE_MEMORY) -> None:
        self.max_devices = max_devices
        self._langs: OrderedDict[str, str] = OrderedDict()

    def set(self, device_id: str, lang: str) -> None:
        self._langs[device_id] = lang
        self._langs.move_to_end(device_id)
        while len(self._langs) > self.max_devices:
            self._langs.popitem(last=False)

    def get(self, device_id: str) -> str:
        return self._langs.get(device_id, DEFAULT_LANG)
