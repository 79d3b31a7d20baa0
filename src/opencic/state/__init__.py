"""Durable state: users, clients, devices, tokens, settings, device state and pending
directives, on SQLite (default) or PostgreSQL. Start at :func:`open_store`."""

from .base import (
    AlreadyExists,
    AuthCode,
    Client,
    Device,
    DeviceState,
    IssuedToken,
    MissingReference,
    PendingDirective,
    SchemaVersionError,
    StateError,
    Store,
    TokenGrant,
    User,
)
from .store import create_store, describe, open_store

__all__ = [
    "AlreadyExists", "AuthCode", "Client", "Device", "DeviceState", "IssuedToken", "MissingReference",
    "PendingDirective", "SchemaVersionError", "StateError", "Store", "TokenGrant", "User",
    "create_store", "describe", "open_store",
]
