"""What an INT8 voice costs and gains, measured on the machine that will run it.

The gain depends on the CPU (onnxruntime's 8-bit kernels need VNNI or AMX to pay; on one
Xeon dynamic quantization was slower than fp32, on an EPYC faster), so ``voxserve
quantize`` measures instead of promising. Every voice runs the same sentences in turn,
round after round, the order reversed every other round, so a busy machine slows them
alike; the ratios within one run are what to read.

- **Throughput** at 1 and 4 clients, in audio seconds per wall second, the way the server
  runs them: one client's sentences one at a time on every core; four clients' sentences
  side by side, one per lane (a lane is one core, as ``VOXSERVE_LANES`` defaults).
- **Word error rate** heard by Whisper tiny.en (the ``asr`` and ``eval`` extras) on the
  same sentences, spoken with noise 0 so that each voice says them one way.
- **Pause floor**: the level of the quietest 5 % of 20 ms frames, in dBFS; 8-bit
  activations raise it (hiss in pauses) long before they cost words.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voxserve.engines.piper import PiperEngine
from voxserve.engines.piper_model import read_config
from voxserve.types import FloatArray, SynthesisParams, Utterance, Voice

log = logging.getLogger(__name__)

#: Sentences the report synthesizes with every voice: numbers, names, questions, commas.
#: Sixteen, so that one misheard word moves the mean word error rate by well under a point.
REPORT_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "It costs three dollars and fifty cents.",
    "Could you please tell me where the nearest train station is?",
    "The meeting was moved to November twenty-fourth, twenty twenty-six.",
    "About fifty percent of the students passed the final exam this year.",
    "Although the forecast promised sunshine, it rained all afternoon.",
    "Please turn off the lights in the kitchen before you leave.",
    "The children played football near the edge of the water.",
    "Her brother works as a nurse at the hospital on the hill.",
    "We will need two more chairs for the dinner on Saturday.",
    "Can you remind me to call the dentist tomorrow morning?",
    "The river flooded the fields after a week of heavy rain.",
    "A small black cat was sleeping on the warm kitchen floor.",
    "He forgot his umbrella, so he arrived completely soaked.",
    "Thank you for waiting, your order is almost ready.",
    "Most of the old towers still shine every night.",
)

#: Concurrent clients the throughput is measured at.
CLIENTS = (1, 4)


@dataclass(frozen=True)
class VoiceFigures:
    """What one voice measured in the report."""

    path: Path
    size_bytes: int
    throughput: dict[int, float]
    """Audio seconds per wall second by number of clients, median over the rounds."""
    cpu_throughput: dict[int, float]
    """Audio seconds per CPU second of this process: steadier than wall time when other
    work shares the machine."""
    wer: float | None
    """Mean word error rate heard by Whisper, or None without the asr extra."""
    pause_floor_dbfs: float
    """Mean over the sentences of the level of their quietest 5 % of 20 ms frames."""


@dataclass(frozen=True)
class QuantizeReport:
    original: VoiceFigures
    quantized: VoiceFigures
    rounds: int = 0
    lanes: int = 1
    sentences: tuple[str, ...] = field(default=REPORT_SENTENCES)

    @property
    def speedup(self) -> dict[int, float]:
        """Quantized over original throughput, by number of clients."""
        return speedups(self.original, self.quantized)


def speedups(original: VoiceFigures, other: VoiceFigures) -> dict[int, float]:
    return {c: other.throughput[c] / original.throughput[c] for c in original.throughput}


def _voice(model: Path) -> Voice:
    config = read_config(model.with_name(model.name + ".json"))
    return Voice(
        id=model.stem, language="en_US", sample_rate=int(config["audio"]["sample_rate"]),
        engine="piper", model_path=model, config_path=model.with_name(model.name + ".json"),
    )  # fmt: skip


def compare(
    original: Path, quantized: Path, *, rounds: int = 3, threads: int = 0
) -> QuantizeReport:
    """Measure the original and the quantized voice side by side (see the module)."""
    figures, lanes = measure([original, quantized], rounds=rounds, threads=threads)
    return QuantizeReport(figures[0], figures[1], rounds=rounds, lanes=lanes)


def measure(
    models: Sequence[Path],
    *,
    rounds: int = 3,
    threads: int = 0,
    sentences: Sequence[str] = REPORT_SENTENCES,
) -> tuple[list[VoiceFigures], int]:
    """Figures of each model, measured in turn round by round; and the lanes used.

    ``threads``: onnxruntime threads of a run alone (0: the usable cores); the lanes are
    one per thread, as the server's defaults make them.
    """
    from voxserve.cpus import usable_cores

    threads = threads or usable_cores()
    engines = [
        PiperEngine(_voice(p), device="cpu", threads=threads, lanes=threads, batching=False)
        for p in models
    ]
    params = SynthesisParams(noise_scale=0.0, noise_w=0.0)
    utterances = [[e.prepare(s, params) for s in sentences] for e in engines]
    walls: list[dict[int, list[float]]] = [{c: [] for c in CLIENTS} for _ in models]
    cpus: list[dict[int, list[float]]] = [{c: [] for c in CLIENTS} for _ in models]
    audio: list[list[FloatArray]] = [[] for _ in models]
    workers = min(max(CLIENTS), engines[0].lanes)
    with ThreadPoolExecutor(workers) as pool:
        for round_ in range(rounds + 1):  # round 0 warms every voice up
            order = list(range(len(models)))
            for side in order if round_ % 2 else order[::-1]:
                engine, items = engines[side], utterances[side]
                for clients in CLIENTS:
                    wall, cpu = time.perf_counter(), time.process_time()
                    if clients == 1:
                        out = [_speak(engine, u, exclusive=True) for u in items]
                    else:
                        out = list(pool.map(lambda u, e=engine: _speak(e, u), items))
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    seconds = sum(len(a) for a in out) / engine.sample_rate
                    if round_:
                        walls[side][clients].append(seconds / wall)
                        cpus[side][clients].append(seconds / cpu)
                    elif clients == 1:
                        audio[side] = out
    rate = engines[0].sample_rate
    wers = _word_error_rates([list(zip(sentences, a, strict=True)) for a in audio], rate)
    figures = [
        VoiceFigures(
            path=path,
            size_bytes=path.stat().st_size,
            throughput={c: float(np.median(v)) for c, v in walls[side].items()},
            cpu_throughput={c: float(np.median(v)) for c, v in cpus[side].items()},
            wer=wers[side] if wers else None,
            pause_floor_dbfs=float(np.mean([pause_floor(a, rate) for a in audio[side]])),
        )
        for side, path in enumerate(models)
    ]
    return figures, engines[0].lanes


def _speak(engine: PiperEngine, items: list[Utterance], *, exclusive: bool = False) -> FloatArray:
    pieces = engine.infer(items, exclusive=exclusive)
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def pause_floor(samples: FloatArray, rate: int) -> float:
    """The level in dBFS of the quietest 5 % of the 20 ms frames of ``samples``."""
    size = rate // 50
    frames = samples[: len(samples) // size * size].reshape(-1, size).astype(np.float64)
    if not len(frames):
        return float("nan")
    rms = np.sqrt((frames**2).mean(axis=1))
    return float(20 * np.log10(max(float(np.percentile(rms, 5)), 1e-10)))


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
