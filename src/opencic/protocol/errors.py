"""Typed protocol errors.

Every failure the server reports to a device is a :class:`CICError`: it carries the
HTTP status and the ``System.Exception`` description (B-ST-01). The server turns any
of them into a response in exactly one place. Following h11/h2, errors caused by the
peer (:class:`CICError` subclasses) are kept apart from our own bugs
(:class:`OutboundSchemaError`), which must never reach the wire.
"""

from __future__ import annotations


class CICError(Exception):
    """An error the peer caused; reported as ``System.Exception`` with ``status``."""

    status: int = 500

    def __init__(self, description: str, *, status: int | None = None) -> None:
        super().__init__(description)
        self.description = description
        if status is not None:
            self.status = status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.description!r})"


class BadRequest(CICError):
    """400: wrong method, undecodable multipart or an invalid message (B-EV-04)."""

    status = 400


class Unauthorized(CICError):
    """401: bearer token missing, unknown or expired (B-CN-04)."""

    status = 401


class NotFound(CICError):
    """404: no such path."""

    status = 404


class MethodNotAllowed(CICError):
    """405: known path, wrong method."""

    status = 405


class PreconditionFailed(CICError):
    """412: no open downchannel on the event's connection (B-EV-02)."""

    status = 412


class PayloadTooLarge(CICError):
    """413 is not in the contract; oversized input is reported as 400 (B-EV-04)."""

    status = 400


class TooManyRequests(CICError):
    """429: too many downchannel requests for one device (B-DC-05)."""

    status = 429


class InternalError(CICError):
    """500: something failed on our side; the description carries a trace id."""

    status = 500


class OutboundSchemaError(Exception):
    """A directive we were about to emit fails its schema: a server bug, never sent."""
