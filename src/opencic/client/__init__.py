"""OpenCIC client SDK: talk to a CIC server the way a device does.

Public API (everything else is internal)::

    from opencic.client import CICClient

    async with CICClient("https://127.0.0.1:8443", token, cafile="cert.pem") as client:
        client.on("SpeechSynthesizer.Speak", handler)   # handler(item: QueuedDirective)
        response = await client.recognize_text("what time is it")
        await client.wait_idle()

Layers, bottom up: :mod:`.connection` (HTTP/2 over asyncio via h2), :mod:`.queues`
(sans-I/O dialogue-ID filtering and message queue), :mod:`.dispatch` (handler
workers), :mod:`.exchange` / :mod:`.downchannel` (one event request / one downchannel
stream), :mod:`.sdk` (the client), :mod:`.speech` (optional Speak playback reports).
"""

from .audio import pcm_source, read_wav_pcm, wav_source
from .auth import AuthAPIError, AuthServerUnavailable, TokenManager, request_code
from .backoff import Backoff
from .connection import HTTP2Connection, make_ssl_context
from .errors import (
    AuthenticationFailed,
    ClientError,
    ConnectError,
    ConnectionClosed,
    NotConnected,
    PingTimeout,
    RequestFailed,
    StreamReset,
    TransportError,
)
from .models import AUDIO_CHUNK_BYTES, EventResponse, default_context
from .queues import MessageQueue, QueuedDirective
from .sdk import CICClient
from .speech import SpeechItem, SpeechOutput
from .tokenstore import TokenFile, TokenFileError, TokenSet
from .useragent import DEFAULT_USER_AGENT, build_user_agent

__all__ = [
    "AUDIO_CHUNK_BYTES",
    "DEFAULT_USER_AGENT",
    "AuthAPIError",
    "AuthServerUnavailable",
    "AuthenticationFailed",
    "Backoff",
    "CICClient",
    "ClientError",
    "ConnectError",
    "ConnectionClosed",
    "EventResponse",
    "HTTP2Connection",
    "MessageQueue",
    "NotConnected",
    "PingTimeout",
    "QueuedDirective",
    "RequestFailed",
    "SpeechItem",
    "SpeechOutput",
    "StreamReset",
    "TokenFile",
    "TokenFileError",
    "TokenManager",
    "TokenSet",
    "TransportError",
    "build_user_agent",
    "default_context",
    "make_ssl_context",
    "pcm_source",
    "read_wav_pcm",
    "request_code",
    "wav_source",
]
