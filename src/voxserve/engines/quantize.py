"""INT8 Piper voices: dynamic quantization, and a side-by-side report of what it costs.

Measured here (FACTS): QUInt8 weights gave a model a third the size and ~20 % faster on
CPU, while QInt8 was 2.7x slower, so QUInt8 is the only choice offered. The report lets a
user see size, speed and intelligibility before deploying the smaller voice.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxserve.engines.piper import PiperEngine
from voxserve.engines.piper_model import read_config
from voxserve.errors import InvalidParameter, VoiceLoadError
from voxserve.files import publish
from voxserve.types import FloatArray, SynthesisParams, Voice

log = logging.getLogger(__name__)

#: Sentences the report synthesizes with both voices (numbers, names, a question).
REPORT_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "It costs three dollars and fifty cents.",
    "Could you please tell me where the nearest train station is?",
    "The meeting was moved to November twenty-fourth, twenty twenty-six.",
    "About fifty percent of the students passed the final exam this year.",
    "Although the forecast promised sunshine, it rained all afternoon.",
)


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


def quantize_voice(source: Path, target: Path) -> Path:
    """Write a QUInt8 copy of the Piper voice ``source`` to ``target`` (with its .json)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

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
    # The quantizer warns on the root logger for every tensor it leaves in float; those
    # are expected for a VITS graph (shape and index tensors) and say nothing actionable.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(source), tmp, weight_type=QuantType.QUInt8)
        publish(tmp, target)  # readable by a server running as another user
    finally:
        root.setLevel(level)
        Path(tmp).unlink(missing_ok=True)
    shutil.copyfile(config, target.with_name(target.name + ".json"))
    return target


@dataclass(frozen=True)
class VoiceFigures:
    """What one voice measured in the report."""

    size_bytes: int
    rtf: float
    """Synthesis seconds per audio second, median over the report sentences."""
    wer: float | None
    """Mean word error rate heard by Whisper, or None without the asr extra."""


@dataclass(frozen=True)
class QuantizeReport:
    original: VoiceFigures
    quantized: VoiceFigures

    @property
    def speedup(self) -> float:
        return self.original.rtf / self.quantized.rtf


def _voice(model: Path) -> Voice:
    config = read_config(model.with_name(model.name + ".json"))
    return Voice(
        id=model.stem, language="en_US", sample_rate=int(config["audio"]["sample_rate"]),
        engine="piper", model_path=model, config_path=model.with_name(model.name + ".json"),
    )  # fmt: skip


def compare(
    original: Path, quantized: Path, *, rounds: int = 3, threads: int = 0
) -> QuantizeReport:
    """Synthesize the report sentences with both voices, interleaved, and judge them."""
    engines = [
        PiperEngine(_voice(p), threads=threads, batching=False) for p in (original, quantized)
    ]
    params = SynthesisParams(noise_scale=0.0, noise_w=0.0)
    rtfs: list[list[float]] = [[], []]
    audio: list[list[tuple[str, FloatArray]]] = [[], []]
    for round_ in range(rounds + 1):  # round 0 warms both up
        for sentence in REPORT_SENTENCES:
            for side, engine in enumerate(engines):
                utterances = engine.prepare(sentence, params)
                started = time.perf_counter()
                samples = engine.infer(utterances)
                elapsed = time.perf_counter() - started
                if round_:
                    seconds = sum(len(s) for s in samples) / engine.sample_rate
                    rtfs[side].append(elapsed / seconds)
                if round_ == 1:
                    audio[side].append((sentence, np.concatenate(samples)))
    wers = _word_error_rates(audio, engines[0].sample_rate)
    figures = [
        VoiceFigures(
            size_bytes=path.stat().st_size,
            rtf=sorted(rtfs[side])[len(rtfs[side]) // 2],
            wer=wers[side] if wers else None,
        )
        for side, path in enumerate((original, quantized))
    ]
    return QuantizeReport(original=figures[0], quantized=figures[1])


def _word_error_rates(audio: list[list[tuple[str, FloatArray]]], rate: int) -> list[float] | None:
    """Mean word error rate of each side, heard by the bundled Whisper tiny.en."""
    try:
        from voxserve.asr import Options, WhisperRecognizer, discover, to_whisper_rate
        from voxserve.asr.models import TINY_EN
        from voxserve.asr.wer import word_error_rate

        judge = WhisperRecognizer(discover(TINY_EN, Path(tempfile.gettempdir()))[TINY_EN])
        word_error_rate("", "")  # the eval extra is there
    except (ImportError, KeyError) as exc:
        log.warning("no word error rate in the report: %s", exc)
        return None
    options = Options(language="en", vad=False)
    means = []
    for side in audio:
        scores = []
        for sentence, samples in side:
            _info, segments = judge.start(to_whisper_rate(samples, rate), options)
            heard = " ".join(s.text.strip() for s in segments)
            scores.append(word_error_rate(sentence, heard))
        means.append(sum(scores) / len(scores))
    return means
