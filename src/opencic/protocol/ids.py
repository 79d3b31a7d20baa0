"""Message, dialogue and attachment identifiers (UUID strings, as the contract uses)."""

from __future__ import annotations

import uuid


def new_id() -> str:
    """A fresh random UUID in canonical text form."""
    return str(uuid.uuid4())
