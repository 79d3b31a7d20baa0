"""Exceptions raised by the client SDK.

Transport failures (:class:`TransportError` and subclasses) are kept apart from
answers the server gave (:class:`RequestFailed`), the same split httpx makes between
``TransportError`` and ``HTTPStatusError``: the first is worth a reconnect, the second
is a statement about the request.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base class of every error the SDK raises."""


class TransportError(ClientError):
    """The HTTP/2 connection or one of its streams failed."""


class ConnectError(TransportError):
    """Could not open the TCP/TLS connection or negotiate HTTP/2."""


class ConnectionClosed(TransportError):
    """The connection ended (socket closed, GOAWAY, protocol error, ping timeout).

    ``retryable`` is true when the server said (via GOAWAY's last stream id) that the
    stream was never processed, so sending it again cannot duplicate it.
    """

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class StreamReset(TransportError):
    """The peer reset one stream (RST_STREAM); the connection itself is still usable."""

    def __init__(self, stream_id: int, error_code: int) -> None:
        super().__init__(f"stream {stream_id} reset by peer (error code {error_code})")
        self.stream_id = stream_id
        self.error_code = error_code


class PingTimeout(TransportError):
    """No PING ACK arrived in time (B-KA-01)."""


class RequestFailed(ClientError):
    """The server answered with a non-2xx status (B-ST-01).

    ``description`` is the ``System.Exception`` description when the body carried one.
    """

    def __init__(self, status: int, description: str | None) -> None:
        super().__init__(f"HTTP {status}: {description or 'no description'}")
        self.status = status
        self.description = description


class AuthenticationFailed(RequestFailed):
    """401: the bearer token was refused (B-CN-04). Refresh the token, then reconnect."""


class NotConnected(ClientError):
    """The client has no usable connection and downchannel (yet, or any more)."""
