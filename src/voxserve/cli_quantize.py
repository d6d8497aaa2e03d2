"""``voxserve quantize``: an INT8 copy of a Piper voice, and what it gains on this machine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    quantize = sub.add_parser(
        "quantize",
        help="make an INT8 copy of a Piper voice and compare it with the original",
        description="Quantize a Piper voice to 8 bits and copy its .onnx.json beside the "
        "output, then synthesize a few sentences with both voices in turn and report size, "
        "throughput at 1 and 4 clients, word error rate (Whisper, with the 'asr' extra) and "
        "the noise floor in pauses, so the trade-off on this machine is visible before "
        "deploying it. 'static' (default) calibrates activation ranges on phonemes of real "
        "text and quantizes the text encoder, flow and vocoder (its last stage stays float "
        "unless --all-stages); 'dynamic' quantizes the "
        "weights only (QUInt8).",
    )
    quantize.add_argument(
        "input", type=Path, help="the Piper voice (.onnx, with .onnx.json beside)"
    )
    quantize.add_argument("output", type=Path, help="where to write the quantized .onnx")
    quantize.add_argument(
        "--method", choices=("static", "dynamic"), default="static", help="default: static"
    )
    quantize.add_argument(
        "--all-stages",
        action="store_true",
        help="static: quantize the vocoder's last upsampling stage too (by default it stays "
        "float): faster, but louder noise in pauses and more misheard words",
    )
    quantize.add_argument(
        "--calibration-text",
        type=Path,
        metavar="FILE",
        help="static: calibrate on these sentences, one per line (default: built-in "
        "English sentences; give your own for a voice of another language)",
    )
    quantize.add_argument("--no-report", action="store_true", help="skip the comparison")
    quantize.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    quantize.add_argument("--json", action="store_true", help="print the report as JSON")


def cmd_quantize(args: argparse.Namespace) -> int:
    from voxserve.engines.quantize import quantize_voice
    from voxserve.engines.quantize_report import compare
    from voxserve.engines.quantize_static import StaticPlan, read_sentences
    from voxserve.errors import InvalidParameter

    if args.method == "dynamic" and (args.all_stages or args.calibration_text):
        raise InvalidParameter(
            "--all-stages and --calibration-text apply to --method static only.",
            param="method",
        )
    if args.rounds < 1:
        raise InvalidParameter("--rounds must be at least 1.", param="rounds")
    plan = StaticPlan(keep_last_stage=not args.all_stages)
    if args.calibration_text is not None:
        plan = StaticPlan(not args.all_stages, read_sentences(args.calibration_text))
    target = quantize_voice(args.input, args.output, method=args.method, plan=plan)
    print(f"wrote {target} and {target.name}.json", file=sys.stderr)
    if args.no_report:
        return 0
    report = compare(args.input, target, rounds=args.rounds)
    if args.json:
        print(json.dumps(report_document(report, args.method, plan), indent=2))
        return 0
    print(f"{'':10} {'size MB':>8} {'1 client':>9} {'4 clients':>10} {'WER %':>6} {'pauses':>8}")
    for name, fig in (("original", report.original), ("quantized", report.quantized)):
        wer = "n/a" if fig.wer is None else f"{fig.wer * 100:.1f}"
        print(
            f"{name:10} {fig.size_bytes / 1e6:8.1f} {fig.throughput[1]:9.1f} "
            f"{fig.throughput[4]:10.1f} {wer:>6} {fig.pause_floor_dbfs:6.1f} dB"
        )
    speed = report.speedup
    print(
        f"speed-up {speed[1]:.2f}x at 1 client, {speed[4]:.2f}x at 4 clients "
        f"(audio seconds per wall second, {report.rounds} interleaved rounds; "
        f"pauses: noise floor in dBFS)"
    )
    return 0


def report_document(report: Any, method: str, plan: Any) -> dict[str, Any]:
    """The report as JSON-ready data (paths as given, clients as string keys)."""
    import dataclasses

    def figures(fig: Any) -> dict[str, Any]:
        data = dataclasses.asdict(fig)
        data["path"] = str(fig.path)
        for key in ("throughput", "cpu_throughput"):
            data[key] = {str(c): round(v, 3) for c, v in data[key].items()}
        return data

    return {
        "method": method,
        "keep_last_stage": plan.keep_last_stage if method == "static" else None,
        "rounds": report.rounds,
        "lanes": report.lanes,
        "original": figures(report.original),
        "quantized": figures(report.quantized),
        "speedup": {str(c): round(v, 3) for c, v in report.speedup.items()},
    }
