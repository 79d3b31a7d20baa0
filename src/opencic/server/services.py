"""Everything one server process holds: the state store, downchannels, assistant."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from ..assistant.core import Assistant
from ..assistant.voice import SpeechInput
from ..config import Settings
from ..speech.synthesizer import SpeechSynthesizer
from ..speech.tts import PiperTextToSpeech
from ..state.base import Store
from ..state.store import create_store, describe
from .admin import read_admin_token
from .downchannels import DownchannelRateLimiter, DownchannelRegistry
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

    def __post_init__(self) -> None:
        if self.token_cache is None:
            self.token_cache = TokenCache(self.store.tokens, ttl=self.settings.token_cache_seconds)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        tts = PiperTextToSpeech(model_path=settings.voice_model)
        synthesizer = SpeechSynthesizer(tts, cache_bytes=settings.tts_cache_bytes)
        speech_input = SpeechInput.default(max_audio_seconds=settings.max_audio_seconds)
        return cls(
            settings=settings,
            store=create_store(settings.database, settings.data_dir),
            assistant=Assistant(synthesizer, speech_input=speech_input),
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
        loads = [self.synthesizer.warm_up(self.assistant.fixed_phrases(), wait=False)]
        if self.speech_input is not None:
            loads.append(self.speech_input.load())
        await asyncio.gather(*loads)
        log.info("ready", extra={
            "data_dir": str(self.settings.data_dir),
            "database": describe(self.settings.database, self.settings.data_dir),
        })

    async def stop(self) -> None:
        # Background pre-rendering must not keep a stopping process alive.
        self.synthesizer.close()
        if self.speech_input is not None:
            self.speech_input.close()
        await self.store.close()
