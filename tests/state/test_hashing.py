"""Secrets at rest: tokens as SHA-256, chosen secrets as salted scrypt."""

from __future__ import annotations

from opencic.state.hashing import hash_secret, new_token, token_hash, verify_secret


def test_tokens_never_look_like_command_line_options() -> None:
    tokens = [new_token() for _ in range(3000)]  # ~47 would start with "-" otherwise
    assert not any(t.startswith("-") for t in tokens)
    assert len(set(tokens)) == len(tokens) and min(map(len, tokens)) >= 43


def test_secret_hashes_are_salted_and_verifiable() -> None:
    a, b = hash_secret("pw"), hash_secret("pw")
    assert a != b and "pw" not in a
    assert verify_secret("pw", a) and not verify_secret("pW", a)
    assert not verify_secret("pw", "garbage") and not verify_secret("pw", "md5$x$y$z$a$b")
    assert token_hash("t") == token_hash("t") != token_hash("u")
