"""Everything one server process holds: database, tokens, downchannels, assistant."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..assistant.core import Assistant
from ..config import Settings
from ..speech.synthesizer import SpeechSynthesizer
from ..speech.tts import PiperTextToSpeech
from ..state.sqlite import Database
from ..state.tokens import TokenStore
from .admin import read_admin_token
from .downchannels import DownchannelRateLimiter, DownchannelRegistry

log = logging.getLogger("opencic.server")


@dataclass
class Services:
    settings: Settings
    db: Database
    tokens: TokenStore
    assistant: Assistant
    synthesizer: SpeechSynthesizer
    admin_token: str | None = None
    registry: DownchannelRegistry = field(default_factory=DownchannelRegistry)
    rate_limiter: DownchannelRateLimiter = field(
        default_factory=lambda: DownchannelRateLimiter(2, 5.0)
    )

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = Database.in_data_dir(settings.data_dir)
        tts = PiperTextToSpeech(model_path=settings.voice_model)
        synthesizer = SpeechSynthesizer(tts, cache_bytes=settings.tts_cache_bytes)
        return cls(
            settings=settings,
            db=db,
            tokens=TokenStore(db),
            assistant=Assistant(synthesizer),
            synthesizer=synthesizer,
            admin_token=read_admin_token(settings.data_dir),
            rate_limiter=DownchannelRateLimiter(
                settings.downchannel_max_requests, settings.downchannel_window_seconds
            ),
        )

    async def start(self) -> None:
        # Load the voice before the first request so no device waits for it.
        await self.synthesizer.warm_up(self.assistant.fixed_phrases(), wait=False)
        log.info("ready", extra={"data_dir": str(self.settings.data_dir)})

    async def stop(self) -> None:
        # Background pre-rendering must not keep a stopping process alive.
        self.synthesizer.close()
        self.db.close()
