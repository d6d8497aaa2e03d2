"""INT8 Piper voices: ``voxserve quantize`` writes one, static or dynamic.

Two methods, because which pays depends on the CPU (measured, docs/performance.md):

- **static** (the default, :mod:`voxserve.engines.quantize_static`): activation ranges
  calibrated on phonemes of real text, QDQ operators that onnxruntime fuses into 8-bit
  kernels, on the text encoder, flow and vocoder (its last stage float unless asked).
  On an Intel Xeon with AVX-512 VNNI: 1.4-1.6 x fp32 (2.2-2.7 x with every stage), where
  dynamic quantization was slower than fp32.
- **dynamic**: QUInt8 weights, activations quantized at run time (``ConvInteger``). It
  gave 1.22 x on an AMD EPYC once; QInt8 weights were 2.7-4 x slower than fp32, so
  QUInt8 is the only dynamic choice offered.

:mod:`voxserve.engines.quantize_report` measures both voices side by side, so a user sees
size, speed, intelligibility and noise before deploying the smaller voice.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from voxserve.engines.piper_model import read_config
from voxserve.engines.quantize_static import StaticPlan, quantize_static_voice
from voxserve.errors import InvalidParameter, VoiceLoadError
from voxserve.files import publish

log = logging.getLogger(__name__)

Method = Literal["static", "dynamic"]
METHODS: tuple[Method, ...] = ("static", "dynamic")


def check_piper_model(model: Path) -> Path:
    """The ``.onnx.json`` of a Piper voice; VoiceLoadError if ``model`` is not one."""
    import onnx

    config = model.with_name(model.name + ".json")
    if not model.is_file():
        raise InvalidParameter(f"{model}: no such file.", param="input")
    if not config.is_file():
        raise VoiceLoadError(f"{model.name}: no {config.name} beside it; not a Piper voice")
    read_config(config)
    try:
        graph = onnx.load(str(model), load_external_data=False).graph
    except Exception as exc:  # onnx raises DecodeError and friends for a bad file
        raise VoiceLoadError(f"{model.name}: not a readable ONNX model ({exc})") from exc
    inputs = {i.name for i in graph.input}
    if not {"input", "input_lengths", "scales"} <= inputs:
        raise VoiceLoadError(f"{model.name}: not a Piper VITS model (inputs: {sorted(inputs)})")
    return config


def quantize_voice(
    source: Path,
    target: Path,
    *,
    method: Method = "static",
    plan: StaticPlan | None = None,
) -> Path:
    """Write an INT8 copy of the Piper voice ``source`` to ``target`` (with its .json).

    ``plan``: what a static quantization touches and calibrates on (default
    :class:`StaticPlan`); ignored by ``dynamic``.
    """
    if method not in METHODS:
        raise InvalidParameter(
            f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.", param="method"
        )
    if target.suffix != ".onnx":
        raise InvalidParameter(f"{target}: the output must end in .onnx.", param="output")
    if target.resolve() == source.resolve() or (
        target.exists() and os.path.samefile(source, target)
    ):
        raise InvalidParameter(
            "The output would overwrite the input; pick another name.", param="output"
        )
    config = check_piper_model(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".onnx")
    os.close(fd)
    try:
        with _quiet_quantizer():
            if method == "static":
                quantize_static_voice(source, Path(tmp), config, plan or StaticPlan())
            else:
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(str(source), tmp, weight_type=QuantType.QUInt8)
        publish(tmp, target)  # readable by a server running as another user
    finally:
        Path(tmp).unlink(missing_ok=True)
    shutil.copyfile(config, target.with_name(target.name + ".json"))
    return target


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """The quantizer warns on the root logger for every tensor it leaves in float; those
    are expected for a VITS graph (shape and index tensors) and say nothing actionable."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
