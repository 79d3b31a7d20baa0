"""ASGI entry point: ``opencic.server.asgi:create_app`` (a factory, settings from env)."""

from __future__ import annotations

from ..config import load_settings
from ..logs import configure
from .app import CICApp
from .services import Services


def create_app() -> CICApp:
    settings = load_settings()
    configure(settings.log_level)
    return CICApp(Services.build(settings))
