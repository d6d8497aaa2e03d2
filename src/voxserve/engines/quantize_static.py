"""Static INT8 Piper voices: QDQ with calibrated activation ranges, on the parts that gain.

Why static: dynamic quantization (``quantize_dynamic``) turns convolutions into
``ConvInteger`` fed by ``DynamicQuantizeLinear``, which onnxruntime runs little faster than
float on CPU (measured on an Intel Xeon with AVX-512 VNNI: 0.90-0.94 x fp32), and the
vocoder, HiFi-GAN, is nearly all convolutions. With activation ranges fixed beforehand by
running the model on phonemes of real text (calibration), the graph holds
QuantizeLinear/DequantizeLinear pairs (QDQ) around each operator, which onnxruntime fuses
into QLinearConv, QLinearAdd and the like: 8-bit kernels from input to output.

Which parts (measured per part on that Xeon, operator time of the cut graphs, QUInt8
activations, per-channel QInt8 weights, MinMax ranges):

- the vocoder (``/dec/``), every operator quantized: 2.2-2.4 x; convolutions alone
  (their outputs re-quantized for float additions): 1.3-1.8 x; the last upsampling stage
  alone is about half its time;
- the text encoder and flow (``/enc_p/``, ``/flow/``): the acoustic model 1.9 x;
- the duration predictor (``/dp/``) is left in float: it decides how long each phoneme
  lasts (and so the word timings), it is a small share of the time, and quantizing it
  changed the sentences' lengths by 4 %.

The price is noise: 8-bit activations with ranges set by loud speech leave a noise floor
in pauses (about -46 dBFS against fp32's -84; dynamic quantization: -59), and Whisper
misheard more words (+1.3 points of word error rate on the report's sentences). So the
default plan keeps the vocoder's last upsampling stage (about half its time) in float:
floor -58 dBFS, +0.6 points, 1.4-1.6 x fp32 at 1 and 4 clients against 2.2-2.7 x with
every stage quantized (docs/performance.md). Percentile and entropy ranges measured no
better than MinMax here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxserve.engines.piper_model import VOCODER_SCOPE
from voxserve.errors import InvalidParameter, VoiceLoadError

log = logging.getLogger(__name__)

#: Scopes of Piper's VITS export that are quantized: text encoder, flow, vocoder.
QUANTIZED_SCOPES = ("/enc_p/", "/flow/", VOCODER_SCOPE)

#: Seed of the noise the model draws while calibrating.
CALIBRATION_SEED = 0

#: Sentences the activation ranges are taken from: varied English (questions, numbers
#: spoken as words, lists, exclamations, long and short), none of them a report sentence.
CALIBRATION_SENTENCES = (
    "Preheat the oven to two hundred degrees and mix the flour with the sugar.",
    "Your flight to Lisbon has been delayed by forty minutes.",
    "Lighthouses once guided nearly every ship that came close to a rocky coast.",
    "Good morning! Today will be mostly sunny, with a light breeze from the west.",
    "Is this the right way to the station, or should I turn left at the bridge?",
    "Seven hundred and forty-two people signed the petition before noon.",
    "Whispering softly, she opened the old wooden door.",
    "Yes.",
    "Bring apples, pears, cheese, bread, and a bottle of sparkling water.",
    "The committee's annual report, published on Thursday, was surprisingly short.",
)


@dataclass(frozen=True)
class StaticPlan:
    """Which nodes of a Piper graph a static quantization touches."""

    keep_last_stage: bool = True
    """Keep the vocoder's last upsampling stage (from its last ConvTranspose to the
    output) in float: a quieter noise floor in pauses and fewer misheard words, for less
    speed-up (False: every stage quantized)."""
    sentences: tuple[str, ...] = CALIBRATION_SENTENCES
    """The text the activation ranges are calibrated on (the voice phonemizes it)."""
    scopes: tuple[str, ...] = QUANTIZED_SCOPES
    """Node-name prefixes of the parts quantized (the benchmark compares others)."""

    def nodes(self, graph: Any) -> list[str]:
        """Names of the nodes of ``graph`` (an onnx GraphProto) to quantize."""
        names = [n.name for n in graph.node]
        chosen = [name for name in names if name.startswith(self.scopes)]
        if not any(name.startswith(VOCODER_SCOPE) for name in chosen):
            raise VoiceLoadError(
                "static quantization needs Piper's standard VITS export (node scopes "
                f"{', '.join(self.scopes)}), and this graph has no {VOCODER_SCOPE} nodes "
                "among them; use --method dynamic"
            )
        if self.keep_last_stage:
            ups = [n.name for n in graph.node if n.name.startswith(VOCODER_SCOPE)
                   and n.op_type == "ConvTranspose"]  # fmt: skip
            if ups:
                last = set(names[names.index(ups[-1]) :])
                chosen = [name for name in chosen if name not in last]
        return chosen


def quantize_static_voice(source: Path, target: Path, config: Path, plan: StaticPlan) -> None:
    """Write the statically quantized ``source`` to ``target`` (a temporary file)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    graph = onnx.load(str(source), load_external_data=False).graph
    nodes = plan.nodes(graph)
    feeds = calibration_feeds(source, config, plan.sentences)
    # The model draws noise (RandomNormalLike) and MinMax keeps the extremes, so unseeded
    # runs gave different ranges, and voices whose word error rates differed by a point
    # (measured: 2.0 % and 3.2 % on the report's sentences). Seeded, one voice and one
    # text make one model. (onnxruntime's seed is process-wide; nothing else here draws.)
    ort.set_seed(CALIBRATION_SEED)
    quantize_static(
        str(source),
        str(target),
        _Reader(feeds),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        # Unsigned activations and signed weights: onnxruntime's fast x86 path (VNNI).
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_quantize=nodes,
    )


def calibration_feeds(source: Path, config: Path, sentences: Sequence[str]) -> list[dict[str, Any]]:
    """The model's inputs for each phonemized sentence, with the voice's own noise and
    length scales (what a server feeds it by default)."""
    from piper.config import PiperConfig

    from voxserve.engines.piper import PiperEngine
    from voxserve.engines.piper_model import read_config
    from voxserve.types import SynthesisParams, Voice

    raw = read_config(config)
    voice = Voice(
        id=source.stem, language="", sample_rate=int(raw["audio"]["sample_rate"]),
        engine="piper", model_path=source, config_path=config,
    )  # fmt: skip
    engine = PiperEngine(voice, device="cpu", threads=1, batching=False)
    piper = PiperConfig.from_dict(raw)
    scales = np.array(
        [piper.noise_scale, piper.length_scale, piper.noise_w_scale], dtype=np.float32
    )
    speakers = max(1, int(piper.num_speakers))
    feeds: list[dict[str, Any]] = []
    for n, sentence in enumerate(sentences):
        for utterance in engine.prepare(sentence, SynthesisParams()):
            feed: dict[str, Any] = {
                "input": np.array([utterance.ids], dtype=np.int64),
                "input_lengths": np.array([len(utterance.ids)], dtype=np.int64),
                "scales": scales,
            }
            if speakers > 1:
                feed["sid"] = np.array([n % speakers], dtype=np.int64)
            feeds.append(feed)
    if not feeds:
        raise InvalidParameter(
            "The calibration text gave no phonemes; give it sentences in the voice's language.",
            param="calibration_text",
        )
    log.info("calibrating on %d utterances", len(feeds))
    return feeds


def read_sentences(path: Path) -> tuple[str, ...]:
    """Non-empty lines of a calibration text file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidParameter(
            f"{path}: cannot read the calibration text ({exc}).", param="calibration_text"
        ) from exc
    sentences = tuple(line.strip() for line in lines if line.strip())
    if not sentences:
        raise InvalidParameter(
            f"{path}: the calibration text is empty; give one sentence per line.",
            param="calibration_text",
        )
    return sentences


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: list[dict[str, Any]]) -> None:
        self._feeds: Iterator[dict[str, Any]] = iter(feeds)

    def get_next(self) -> dict[str, Any] | None:
        return next(self._feeds, None)
