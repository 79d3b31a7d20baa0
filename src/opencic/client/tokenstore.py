"""A device's token pair on disk: one small JSON file (B-CN-05).

::

    store = TokenFile("kitchen-speaker.tokens.json")
    auth = TokenManager(auth_url, client_id, secret, device_id, model_id, store=store)

The file holds the access and refresh tokens, when the access token expires, and which
``client_id``/``device_id``/``model_id`` they were issued to (so a file made for one
device is not silently used for another). It is written the way a pair of credentials
should be:

* mode 0600 from the first byte (the temporary file is created with it, so there is no
  moment where another user can read it), in a directory made 0700 if it is new;
* atomically: a temporary file in the same directory, flushed and fsynced, then
  ``os.replace`` and an fsync of the directory. A crash or power cut leaves the old
  pair or the new one, never a torn or empty file;
* a file that cannot be read as a token file raises :class:`TokenFileError` naming
  the path. It is never deleted or overwritten behind the caller's back: it may hold
  the only copy of a live refresh token.

Refresh tokens are single use on the server (rotation), so two processes sharing one
file must not refresh at the same time with the same refresh token: :meth:`TokenFile.lock`
is an advisory ``flock`` on ``<file>.lock`` that :class:`~opencic.client.auth.TokenManager`
holds while it re-reads the file, refreshes and saves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ClientError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
    fcntl = None  # type: ignore[assignment]

FORMAT_VERSION = 1
MAX_FILE_BYTES = 64 * 1024  # a pair is a few hundred bytes; anything huge is not ours


class TokenFileError(ClientError):
    """The token file cannot be read, written or locked (the message names the path)."""


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: float  # POSIX seconds; inf when the server gave no expires_in
    # The grant's expires_in: how long such a token lives, so whoever loads the pair
    # (another process) renews it at the same point (half-life for short tokens).
    lifetime: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token,
                "expires_at": self.expires_at, "lifetime": self.lifetime}

    def __repr__(self) -> str:  # a TokenSet in a log or a traceback shows no secret
        return f"TokenSet(expires_at={self.expires_at!r})"


@dataclass(frozen=True, slots=True)
class SavedTokens:
    """What a token file holds: the pair and whom it was issued to."""

    client_id: str
    device_id: str
    model_id: str
    tokens: TokenSet


class TokenFile:
    """The JSON token file at ``path`` (see the module documentation)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r})"

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    # ------------------------------------------------------------------ read

    def load(self) -> SavedTokens | None:
        """The saved pair; None if the file does not exist. TokenFileError if it
        exists but is not a token file (the file is left as it is)."""
        try:
            with self.path.open("rb") as fh:
                raw = fh.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenFileError(f"cannot read the token file {self.path}: "
                                 f"{exc.strerror or exc}") from exc
        try:
            return _decode(raw)
        except _Corrupt as exc:
            # The file is kept: it may hold the only copy of a live refresh token.
            raise TokenFileError(
                f"{self.path} is not a valid token file ({exc}); it was left untouched: "
                "repair it, or remove it and authorise the device again") from None

    # ------------------------------------------------------------------ write

    def save(self, saved: SavedTokens) -> None:
        """Replace the file with ``saved``, atomically and durably (mode 0600)."""
        data = json.dumps(_encode(saved), indent=2, sort_keys=True).encode() + b"\n"
        directory = self.path.parent
        try:
            if not directory.exists():
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self._write_temporary(directory, data)
            try:
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            _fsync_directory(directory)
        except OSError as exc:
            raise TokenFileError(f"cannot write the token file {self.path}: "
                                 f"{exc.strerror or exc}") from exc

    def _write_temporary(self, directory: Path, data: bytes) -> Path:
        # O_EXCL with a random name: never follows or reuses someone else's file; the
        # mode is given at creation (umask can only remove bits from 0600).
        for _ in range(100):
            tmp = directory / f".{self.path.name}.{os.urandom(6).hex()}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())  # the data is on disk before the rename is
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            return tmp
        raise FileExistsError(f"no free temporary name in {directory}")

    def clear(self) -> bool:
        """Remove the file (after a logout) and its lock file; False if there was none."""
        # The lock file first: a process waiting on it then finds no file and no tokens.
        with contextlib.suppress(OSError):
            self.lock_path.unlink()
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise TokenFileError(f"cannot remove the token file {self.path}: "
                                 f"{exc.strerror or exc}") from exc
        with contextlib.suppress(OSError):
            _fsync_directory(self.path.parent)
        return True

    # ------------------------------------------------------------------ lock

    @contextlib.asynccontextmanager
    async def lock(self, timeout: float = 30.0) -> AsyncIterator[None]:
        """Hold the advisory lock shared by every process using this file.

        Polled rather than a blocking ``flock`` in a thread: waiting stays cancellable
        and a cancelled wait cannot leave a thread that takes the lock later."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        try:
            if not self.path.parent.exists():
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise TokenFileError(f"cannot open the lock file {self.lock_path}: "
                                 f"{exc.strerror or exc}") from exc
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TokenFileError(
                            f"{self.lock_path} is held by another process for more than "
                            f"{timeout:g} s") from None
                    await asyncio.sleep(0.02)
            yield
        finally:
            os.close(fd)  # closing releases the flock


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable (POSIX: a rename lives in the directory).
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode(saved: SavedTokens) -> dict[str, Any]:
    t = saved.tokens
    return {
        "version": FORMAT_VERSION,
        "client_id": saved.client_id,
        "device_id": saved.device_id,
        "model_id": saved.model_id,
        "access_token": t.access_token,
        "refresh_token": t.refresh_token,
        # JSON has no infinity: no expiry known is null.
        "expires_at": t.expires_at if math.isfinite(t.expires_at) else None,
        "lifetime": t.lifetime,
        "saved_at": round(time.time(), 3),
    }


class _Corrupt(Exception):
    """Why a file is not a token file."""


def _decode(raw: bytes) -> SavedTokens:
    if len(raw) > MAX_FILE_BYTES:
        raise _Corrupt(f"larger than {MAX_FILE_BYTES} bytes")
    if not raw.strip():
        raise _Corrupt("the file is empty")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Corrupt(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _Corrupt("not a JSON object")
    if doc.get("version") != FORMAT_VERSION:
        raise _Corrupt(f"unsupported version {doc.get('version')!r} "
                         f"(this SDK reads version {FORMAT_VERSION})")

    def text(name: str, *, optional: bool = False) -> Any:
        value = doc.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            raise _Corrupt(f"{name!r} must be a non-empty string")
        return value

    expires_at = doc.get("expires_at")
    if expires_at is None:
        expires = math.inf
    elif isinstance(expires_at, int | float) and not isinstance(expires_at, bool) \
            and math.isfinite(expires_at):
        expires = float(expires_at)
    else:
        raise _Corrupt("'expires_at' must be a number or null")
    lifetime = doc.get("lifetime")  # absent in files written before it was kept
    if lifetime is not None and (isinstance(lifetime, bool) or not isinstance(lifetime, int | float)
                                 or not math.isfinite(lifetime) or lifetime < 0):
        raise _Corrupt("'lifetime' must be a non-negative number or null")
    return SavedTokens(text("client_id"), text("device_id"), text("model_id"),
                       TokenSet(text("access_token"), text("refresh_token", optional=True),
                                expires, None if lifetime is None else float(lifetime)))
