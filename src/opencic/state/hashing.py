"""How secrets are kept: never in the clear.

Two kinds, hashed differently on purpose:

* tokens we generate (access, refresh) carry 256 random bits, so a plain SHA-256 is as
  strong as any slow hash and — being deterministic — lets us find the row by hash;
* secrets people choose (passwords, client secrets) may be guessable, so they get a
  salted scrypt; verifying costs tens of milliseconds, which callers on the event loop
  must push to a thread (:func:`hash_secret_async`, :func:`verify_secret_async`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 512
# scrypt cost: n=2**14, r=8 (16 MiB, ~50 ms here), the interactive-login setting of
# the scrypt paper; stored in each hash so it can be raised later.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def new_token() -> str:
    # Never starting with "-": a token is passed on command lines (`--token T`,
    # `opencic token revoke T`), where argparse would take it for an option.
    while True:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        if not token.startswith("-"):
            return token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


async def hash_secret_async(secret: str) -> str:
    return await asyncio.to_thread(hash_secret, secret)


async def verify_secret_async(secret: str, stored: str | None) -> bool:
    if stored is None:
        # Same cost as a real check, so timing does not tell which names exist.
        await asyncio.to_thread(hash_secret, secret)
        return False
    return await asyncio.to_thread(verify_secret, secret, stored)
