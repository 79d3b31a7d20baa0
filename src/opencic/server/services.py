"""Everything one server process holds: the state store, downchannels, assistant."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from ..assistant.core import Assistant
from ..assistant.voice import SpeechInput
from ..config import Settings
from ..delivery import Delivery
from ..speech.languages import SPEECH_LANGUAGES, build_router, parse_language_paths
from ..speech.synthesizer import SpeechSynthesizer
from ..speech.tts import PiperTextToSpeech
from ..speech.voices import other_voices
from ..state.base import Store
from ..state.store import create_store, describe
from .admin import read_admin_token
from .downchannels import DownchannelRateLimiter, DownchannelRegistry
from .housekeeping import Housekeeping
from .token_cache import TokenCache

log = logging.getLogger("opencic.server")


@dataclass
class Services:
    settings: Settings
    store: Store  # opened in start(), before the first request
    assistant: Assistant
    synthesizer: SpeechSynthesizer
    admin_token: str | None = None
    registry: DownchannelRegistry = field(default_factory=DownchannelRegistry)
    rate_limiter: DownchannelRateLimiter = field(
        default_factory=lambda: DownchannelRateLimiter(2, 5.0)
    )
    token_cache: TokenCache | None = None
    speech_input: SpeechInput | None = None  # VAD + ASR, loaded in start()
    housekeeping: Housekeeping | None = None  # token sweep and purge, from start()
    delivery: Delivery | None = None  # pushes, with store-and-forward

    def __post_init__(self) -> None:
        if self.token_cache is None:
            self.token_cache = TokenCache(self.store.tokens, ttl=self.settings.token_cache_seconds)
        if self.delivery is None:
            self.delivery = Delivery(self.registry, self.store)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        tts = PiperTextToSpeech(model_path=settings.voice_model)
        synthesizer = SpeechSynthesizer(tts, cache_bytes=settings.tts_cache_bytes)
        speech_input = SpeechInput.from_settings(settings)
        # Korean on its own model, English as configured above (speech/languages.py).
        speech_input.recognizer = build_router(
            speech_input.recognizer,
            models=parse_language_paths(settings.asr_models, allowed=SPEECH_LANGUAGES),
            cache_dir=settings.model_cache_dir,
            preload=settings.asr_preload,
        )
        voices = other_voices(parse_language_paths(settings.tts_voices, allowed=("ko",)),
                              cache_bytes=settings.tts_cache_bytes)
        store = create_store(settings.database, settings.data_dir)
        return cls(
            settings=settings,
            store=store,
            assistant=Assistant(synthesizer, speech_input=speech_input, store=store,
                                voices=voices),
            speech_input=speech_input,
            synthesizer=synthesizer,
            admin_token=read_admin_token(settings.data_dir),
            rate_limiter=DownchannelRateLimiter(
                settings.downchannel_max_requests, settings.downchannel_window_seconds
            ),
        )

    async def start(self) -> None:
        # Connects and applies migrations (the runner already did, before the workers
        # started; here it is a version check that refuses a newer schema).
        await self.store.open()
        # Load the voice, the end-of-speech and the recognition models (both cores,
        # side by side) before the first request so no device waits for them.
        loads = [voice.warm_up(self.assistant.fixed_phrases(lang), wait=False)
                 for lang, voice in self._voices().items()]
        if self.speech_input is not None:
            loads.append(self.speech_input.load())
        await asyncio.gather(*loads)
        self.housekeeping = Housekeeping(
            self.store, self.registry, self.token_cache,
            sweep_seconds=self.settings.token_sweep_seconds,
            purge_seconds=self.settings.purge_interval_seconds,
        )
        self.housekeeping.start()
        log.info("ready", extra={
            "data_dir": str(self.settings.data_dir),
            "database": describe(self.settings.database, self.settings.data_dir),
        })

    def _voices(self) -> dict[str, SpeechSynthesizer]:
        """The English synthesizer and the other languages' (Assistant.voices)."""
        voices = {lang: v for lang, v in self.assistant.voices.items()
                  if isinstance(v, SpeechSynthesizer)}
        voices["en"] = self.synthesizer
        return voices

    async def stop(self) -> None:
        if self.housekeeping is not None:
            await self.housekeeping.stop()
        # Background pre-rendering must not keep a stopping process alive.
        for voice in self._voices().values():
            voice.close()
        if self.speech_input is not None:
            self.speech_input.close()
        await self.store.close()
