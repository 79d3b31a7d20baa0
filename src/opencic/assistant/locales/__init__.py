"""Replies in the request's language: one :class:`Locale` per language.

A locale does two things. Fixed phrases ("Sorry, I can't change the volume on this
device.") are written in English in the capabilities, as before, and translated when
the answer is rendered (:meth:`Locale.say`: a table from the English text to the
language's; English is the key because it is what the capabilities and their tests
already name). Phrases with values in them (times, dates, counts, durations) are made by
the locale's methods, which the capabilities call with the values: word order, number
words and plurals differ too much between languages for a template with blanks.

English is the default and the base class (``en.English``); another language is a
subclass that overrides every method and supplies its table (``ko.Korean``). A phrase
missing from a table is spoken in English (the unit tests check the tables are
complete for the fixed phrases).
"""

from __future__ import annotations

from .en import English, Locale
from .ko import Korean

__all__ = ["ENGLISH", "LOCALES", "Locale", "locale_for"]

ENGLISH: Locale = English()
LOCALES: dict[str, Locale] = {locale.lang: locale for locale in (ENGLISH, Korean())}


def locale_for(lang: str | None) -> Locale:
    """The locale of ``lang`` (a CIC lang such as ``ko``); English for any other."""
    return LOCALES.get((lang or "en").split("-")[0].lower(), ENGLISH)
