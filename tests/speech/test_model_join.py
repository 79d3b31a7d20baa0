"""Joining the split multilingual Whisper model (speech/model_join.py): atomic, hashed,
once; a damaged cache is joined again. Fake part packages make the rules fast to test;
one test joins the real, pinned packages and checks upstream's hashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from opencic.speech import model_join
from opencic.speech.languages import MultilingualWhisper
from opencic.speech.model_join import (
    INSTALL_HINT,
    ModelNotInstalledError,
    join_multilingual_model,
    multilingual_model_dir,
)
from opencic.speech.vad import ModelIntegrityError

PART_1, PART_2 = b"first half of the weights|", b"|second half"
SIDE = {"config.json": b"{}", "tokenizer.json": b'{"t": 1}', "vocabulary.txt": b"a\nb\n"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two importable data-only packages shaped like the real ones, and their hashes."""
    site = tmp_path / "site"
    for package, name, data in (("fake_part1", "model.bin.part1", PART_1),
                                ("fake_part2", "model.bin.part2", PART_2)):
        (site / package / "data").mkdir(parents=True)
        (site / package / "__init__.py").write_text("")
        (site / package / "data" / name).write_bytes(data)
    for name, data in SIDE.items():
        (site / "fake_part1" / "data" / name).write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(model_join, "PARTS", (("fake_part1", "data/model.bin.part1"),
                                              ("fake_part2", "data/model.bin.part2")))
    monkeypatch.setattr(model_join, "SIDE_FILES_PACKAGE", "fake_part1")
    monkeypatch.setattr(model_join, "MODEL_BYTES", len(PART_1 + PART_2))
    monkeypatch.setattr(model_join, "MULTILINGUAL_WHISPER_SHA256", {
        "model.bin": sha(PART_1 + PART_2), **{name: sha(data) for name, data in SIDE.items()}})
    return site


def test_joins_once_into_a_directory_named_by_the_hash(fake_parts: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    target = join_multilingual_model(cache)
    assert target == multilingual_model_dir(cache)
    assert target.name.startswith("whisper-base-")
    assert (target / "model.bin").read_bytes() == PART_1 + PART_2
    assert {p.name for p in target.iterdir()} == {"model.bin", *SIDE}  # no temporary left
    stamp = (target / "model.bin").stat().st_mtime_ns
    assert join_multilingual_model(cache) == target
    assert (target / "model.bin").stat().st_mtime_ns == stamp  # not joined again


def test_a_wrong_part_leaves_nothing_behind(fake_parts: Path, tmp_path: Path) -> None:
    (fake_parts / "fake_part2" / "data" / "model.bin.part2").write_bytes(b"|tampered!!!")
    with pytest.raises(ModelIntegrityError, match="SHA-256") as info:
        join_multilingual_model(tmp_path / "cache")
    assert INSTALL_HINT in str(info.value)
    target = multilingual_model_dir(tmp_path / "cache")
    assert not (target / "model.bin").exists()
    assert not [p for p in target.iterdir() if p.name.endswith(".tmp")]


def test_missing_packages_say_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setattr(model_join, "PARTS", (("no_such_part_package", "data/x"),))
    assert not model_join.multilingual_parts_installed()
    with pytest.raises(ModelNotInstalledError, match=r"opencic\[multilingual\]"):
        join_multilingual_model(tmp_path)


def test_force_replaces_a_damaged_cache_file(fake_parts: Path, tmp_path: Path) -> None:
    target = join_multilingual_model(tmp_path)
    (target / "model.bin").write_bytes(b"X" * len(PART_1 + PART_2))  # same size, wrong bytes
    assert join_multilingual_model(tmp_path) == target  # a size check only: still there
    join_multilingual_model(tmp_path, force=True)
    assert (target / "model.bin").read_bytes() == PART_1 + PART_2


def test_recognizer_joins_again_once_when_the_check_at_load_fails(
    fake_parts: Path, tmp_path: Path
) -> None:
    target = join_multilingual_model(tmp_path)
    (target / "model.bin").write_bytes(b"X" * len(PART_1 + PART_2))
    calls: list[bool] = []

    def prepare(force: bool) -> Path:
        calls.append(force)
        return join_multilingual_model(tmp_path, force=force)

    recognizer = MultilingualWhisper(target, ["ko"], prepare=prepare,
                                     sha256=model_join.MULTILINGUAL_WHISPER_SHA256)
    recognizer.verify()  # no model load: the fake is not a real model
    assert calls == [False, True]
    assert (target / "model.bin").read_bytes() == PART_1 + PART_2
    recognizer.close()


def test_a_second_failure_is_final(fake_parts: Path, tmp_path: Path) -> None:
    target = join_multilingual_model(tmp_path)
    recognizer = MultilingualWhisper(target, ["ko"], prepare=lambda force: target,
                                     sha256={"model.bin": "0" * 64})
    with pytest.raises(ModelIntegrityError, match="SHA-256 mismatch"):
        recognizer.verify()
    recognizer.close()


@pytest.mark.skipif(not model_join.multilingual_parts_installed() and os.environ.get("CI") != "true",
                    reason="the multilingual extra is not installed")
def test_the_pinned_packages_join_into_upstreams_model(tmp_path: Path) -> None:
    """The real wheels: the joined files are byte for byte Systran/faster-whisper-base."""
    target = join_multilingual_model(tmp_path)
    assert (target / "model.bin").stat().st_size == model_join.MODEL_BYTES
    for name, expected in model_join.MULTILINGUAL_WHISPER_SHA256.items():
        assert sha((target / name).read_bytes()) == expected, name
