"""The SDK's token file (B-CN-05): what is on disk, with which permissions, that a
write is all or nothing, that a damaged file is reported and kept, and the lock that
processes sharing a file take while they refresh."""

from __future__ import annotations

import asyncio
import json
import math
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opencic.client.tokenstore import SavedTokens, TokenFile, TokenFileError, TokenSet


def pair(n: int = 1, expires_at: float = 2_000_000_000.5) -> SavedTokens:
    return SavedTokens("client-1", "kitchen", "m1",
                       TokenSet(f"access-{n}", f"refresh-{n}", expires_at))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_round_trip_and_format(tmp_path: Path) -> None:
    store = TokenFile(tmp_path / "tokens.json")
    assert store.load() is None  # no file yet: not an error
    store.save(pair())
    assert store.load() == pair()
    doc = json.loads(store.path.read_text())
    assert doc["version"] == 1 and doc["device_id"] == "kitchen" and doc["model_id"] == "m1"
    assert doc["access_token"] == "access-1" and doc["refresh_token"] == "refresh-1"
    # No expires_in from the server: null on disk (JSON has no infinity), inf again in memory.
    store.save(pair(2, math.inf))
    assert json.loads(store.path.read_text())["expires_at"] is None
    loaded = store.load()
    assert loaded is not None and loaded.tokens.expires_at == math.inf
    assert leftovers(tmp_path) == []


def test_mode_0600_whatever_the_umask_and_a_new_directory_0700(tmp_path: Path) -> None:
    old = os.umask(0)  # the most permissive umask: the file must still be private
    try:
        store = TokenFile(tmp_path / "new" / "dir" / "tokens.json")
        store.save(pair())
    finally:
        os.umask(old)
    assert mode(store.path) == 0o600
    assert mode(store.path.parent) == 0o700
    # Rewriting a file someone loosened makes it private again (a new inode each time).
    store.path.chmod(0o644)
    inode = store.path.stat().st_ino
    store.save(pair(2))
    assert mode(store.path) == 0o600 and store.path.stat().st_ino != inode


def test_a_failed_write_leaves_the_old_pair_and_no_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = TokenFile(tmp_path / "tokens.json")
    store.save(pair(1))
    before = store.path.read_bytes()

    def no_rename(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(TokenFileError, match="cannot write the token file .*No space left"):
        store.save(pair(2))
    assert store.path.read_bytes() == before
    assert leftovers(tmp_path) == []

    def no_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.undo()
    monkeypatch.setattr(os, "fsync", no_fsync)  # the data never reached the disk
    with pytest.raises(TokenFileError):
        store.save(pair(3))
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert leftovers(tmp_path) == []


WRITER = """
import sys
from opencic.client.tokenstore import SavedTokens, TokenFile, TokenSet
store = TokenFile(sys.argv[1])
n = 0
while True:
    n += 1
    # Pairs of very different sizes: a torn write would show as bad JSON or a mix.
    store.save(SavedTokens("c", "d", "m", TokenSet("a" * (n % 7 * 300 + 1), f"r{n}", n)))
"""


def test_readers_never_see_a_torn_file_and_a_killed_writer_leaves_a_whole_one(
        tmp_path: Path) -> None:
    """Another process rewriting the file as fast as it can, then killed mid-write (as
    a crash would): every read in between, and the file left behind, is a whole pair."""
    path = tmp_path / "tokens.json"
    TokenFile(path).save(pair())
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
    try:
        reader = TokenFile(path)
        seen = set()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            loaded = reader.load()  # TokenFileError here would be a torn file
            assert loaded is not None
            assert len(loaded.tokens.access_token) % 300 == 1 or loaded == pair()
            seen.add(loaded.tokens.refresh_token)
        assert len(seen) > 5, "the writer did not get going"
    finally:
        writer.kill()
        writer.wait()
    assert TokenFile(path).load() is not None


@pytest.mark.parametrize(("content", "why"), [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"version": 2}', "unsupported version 2"),
    (json.dumps({"version": 1, "client_id": "c", "device_id": "d", "model_id": "m",
                 "refresh_token": "r", "expires_at": 1}).encode(),
     "'access_token' must be a non-empty string"),
    (json.dumps({"version": 1, "client_id": "c", "device_id": "d", "model_id": "m",
                 "access_token": "a", "refresh_token": "r", "expires_at": "soon"}).encode(),
     "'expires_at' must be a number or null"),
    (json.dumps({"version": 1, "client_id": "c", "device_id": "d", "model_id": "m",
                 "access_token": "a", "refresh_token": 7, "expires_at": 1}).encode(),
     "'refresh_token' must be a non-empty string"),
    (b"{" + b" " * 70_000 + b"}", "larger than"),
])
def test_a_damaged_file_is_reported_by_path_and_never_removed(
        tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(content)
    with pytest.raises(TokenFileError) as info:
        TokenFile(path).load()
    message = str(info.value)
    assert str(path) in message and why in message and "left untouched" in message
    assert path.read_bytes() == content


def test_an_unreadable_file_is_an_error_not_an_absent_one(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.mkdir()  # reading a directory fails with an OSError other than "not found"
    with pytest.raises(TokenFileError, match="cannot read the token file"):
        TokenFile(path).load()


def test_clear(tmp_path: Path) -> None:
    store = TokenFile(tmp_path / "tokens.json")
    assert store.clear() is False
    store.save(pair())

    async def lock_once() -> None:
        async with store.lock():
            pass

    asyncio.run(lock_once())
    assert store.lock_path.exists()
    assert store.clear() is True
    assert not store.path.exists() and store.load() is None
    assert not store.lock_path.exists()  # nothing left behind after a logout


def test_the_lock_is_exclusive_between_holders(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"

    async def go() -> None:
        first, second = TokenFile(path), TokenFile(path)  # two "processes": two open files
        async with first.lock():
            assert mode(first.lock_path) == 0o600
            with pytest.raises(TokenFileError, match="held by another process"):
                async with second.lock(timeout=0.1):
                    pass
            waiter = asyncio.create_task(_hold(second))
            await asyncio.sleep(0.1)
            assert not waiter.done()  # still waiting for the first holder
        await asyncio.wait_for(waiter, 2)

    asyncio.run(go())


async def _hold(store: TokenFile) -> None:
    async with store.lock(timeout=5):
        pass


def test_token_set_repr_hides_the_tokens() -> None:
    tokens = TokenSet("secret-access", "secret-refresh", 5.0)
    assert "secret" not in repr(tokens) and "secret" not in repr(pair())
