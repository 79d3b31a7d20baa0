"""Text normalisation and word error rate for judging recognisers (tests, benchmarks).

Whisper writes "Set the volume to 5." where the speaker said "set the volume to five",
and "7.30" or "7:30" for "seven thirty". Both sides are normalised the same way before
comparing: lower case, punctuation and apostrophes dropped, hyphens split, digits spelled
out as words (cardinals up to 999 999; "7:30" as "seven thirty", "%" as "percent").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_to_words(n: int) -> str:
    """Cardinal in words, as a speaker says it ("one hundred twenty five")."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    if n < 1_000_000:
        thousands, rest = divmod(n, 1000)
        head = number_to_words(thousands) + " thousand"
        return head + ("" if rest == 0 else " " + number_to_words(rest))
    return " ".join(_ONES[int(d)] for d in str(n))  # long numbers: digit by digit


def _spell_time(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes == 0:
        return f"{number_to_words(hours)} oclock"
    spoken = number_to_words(minutes) if minutes >= 10 else "oh " + number_to_words(minutes)
    return f"{number_to_words(hours)} {spoken}"


_TIME = re.compile(r"\b(\d{1,2})[:.](\d{2})\b")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_NUMBER = re.compile(r"\d+")
_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip


def _ordinal(match: re.Match[str]) -> str:
    words = number_to_words(int(match.group(1))).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def normalize_words(text: str) -> list[str]:
    """The words of ``text`` in a canonical form for comparison."""
    text = text.lower().replace("%", " percent ")
    text = re.sub(r"\b(a|p)\.m\.", r"\1m", text)
    text = _TIME.sub(_spell_time, text)
    text = _ORDINAL.sub(_ordinal, text)
    text = re.sub(r"(\d),(\d{3})", r"\1\2", text)  # 1,000 -> 1000
    text = _NUMBER.sub(lambda m: f" {number_to_words(int(m.group()))} ", text)
    text = re.sub(r"['’]", "", text)  # what's -> whats on both sides
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return text.split()


def normalize_text(text: str) -> str:
    return " ".join(normalize_words(text))


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between word sequences (substitutions, insertions, deletions)."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def word_error_rate(pairs: Iterable[tuple[str, str]]) -> float:
    """Corpus WER over (reference, hypothesis) pairs: total edits / total reference words."""
    edits = words = 0
    for ref, hyp in pairs:
        ref_words, hyp_words = normalize_words(ref), normalize_words(hyp)
        edits += edit_distance(ref_words, hyp_words)
        words += len(ref_words)
    return edits / words if words else 0.0
