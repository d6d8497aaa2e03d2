"""Cache speed over HTTP: what a hit costs next to a miss, and what a cache buys under a
Zipf-distributed load.

Starts real servers (``tests/live.py``'s LiveServer: ``python -m voxserve serve`` on a
free 127.0.0.1 port, CPU, the Piper voice only) and a real ``redis-server``
(``tests/redis_server.py``), then measures with httpx from this process:

a. Latency of one short text, ``stream=false``, wav, noise 0, p50 and p99 on the client:
   a memory hit, a Redis hit (two servers running side by side), and a miss on the
   same text (``Cache-Control: no-cache`` makes the memory server synthesize and store
   it again), with ``GET /healthz`` on each server; every round runs every side, in an
   order that rotates. The time a request spends in the server cannot be seen from
   outside, so ``server_estimate_ms`` = p50(request) − p50(/healthz on that server):
   what the route costs beyond an empty one, the transfer of the audio included.
   Targets: memory hit <= 2 ms, Redis hit <= 5 ms.
b. Throughput of a Zipf mix (rank k drawn with probability ∝ 1/k^s over N phrases;
   R requests from C concurrent clients) against the memory-cache server and against
   one with ``VOXSERVE_CACHE=off``: requests/s and seconds of audio served per wall
   second, and their ratio. Target >= 5x. The cached server runs the mix twice: cold
   (empty cache, as after a deploy; the off server gets this same sequence) and warm (a
   new draw over the same phrases on the filled cache: a long-running replica). A cold
   cache cannot beat requests / distinct phrases (``ideal_cold_ratio``; ~3.5 for 300
   requests over 200 phrases at s=1.1), so the target is one for the warm state.

The sides of (b) run one after the other (each needs the whole machine); the load
average in the JSON says how comparable they were.
Run: ``.venv/bin/python benchmarks/bench_cache.py [--quick]``.
"""

from __future__ import annotations

import io
import random
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BENCH_ENV,
    TESTS,
    Budget,
    import_live_server,
    median,
    parse_args,
    percentile,
    print_table,
    summary,
    verdict,
    write_result,
)
from texts import SHORT

MEMORY_HIT_MS_TARGET = 2.0
REDIS_HIT_MS_TARGET = 5.0
ZIPF_RATIO_TARGET = 5.0
ZIPF_S = 1.1
SEED = 20_261_124
VOICE = "en_US-joe-medium"
ROUTE = "/v1/audio/speech"

#: Short prompts of the kind an IVR or a UI speaks again and again; with a number each
#: template gives as many distinct phrases as needed.
TEMPLATES = (
    "Your order number {n} is ready for collection.",
    "Please proceed to counter {n}.",
    "Flight {n} is now boarding at gate seven.",
    "You are caller number {n} in the queue.",
    "Room {n} is on the second floor, to your left.",
    "Platform {n} is closed for maintenance today.",
    "Your table for {n} will be ready shortly.",
    "Bus {n} leaves from the north entrance.",
)


def phrases(count: int) -> list[str]:
    return [TEMPLATES[i % len(TEMPLATES)].format(n=i + 1) for i in range(count)]


def zipf_sequence(count: int, requests: int, s: float, seed: int) -> list[int]:
    """Phrase indices drawn with P(rank k) ∝ 1/k^s, reproducibly."""
    weights = [1 / (k + 1) ** s for k in range(count)]
    return random.Random(seed).choices(range(count), weights=weights, k=requests)


def body(text: str) -> dict[str, Any]:
    return {
        "model": "tts-1", "input": text, "voice": VOICE, "response_format": "wav",
        "stream": False, "noise_scale": 0.0, "noise_w": 0.0,
    }  # fmt: skip


def speak(client: httpx.Client, text: str, *, no_cache: bool = False) -> httpx.Response:
    headers = {"Cache-Control": "no-cache"} if no_cache else {}
    response = client.post(ROUTE, json=body(text), headers=headers)
    response.raise_for_status()
    return response


def clock(fn: Callable[[], httpx.Response]) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = fn()
    return time.perf_counter() - start, response


def distribution(values: list[float]) -> dict[str, Any]:
    """summary() plus p99, in seconds."""
    out = summary(values)
    if values:
        out["p99"] = round(percentile(values, 99), 6)
    return out


def measure_latency(
    clients: dict[str, httpx.Client], text: str, *, rounds: int, seconds: float, miss_every: int
) -> dict[str, Any]:
    """For each server (name -> client): its hit and its /healthz; the memory server also
    a miss every ``miss_every`` rounds. All sides run in every round, in an order that
    rotates from round to round, so the machine's noise falls on all of them alike."""
    sides: list[tuple[str, str]] = []
    for name, client in clients.items():
        speak(client, text)  # stores the entry (or hits one left by an earlier run)
        if speak(client, text).headers.get("x-cache") != "hit":
            raise RuntimeError(f"{name}: the second request for one text was not a hit")
        sides += [(name, "healthz"), (name, "hit")]
    times: dict[tuple[str, str], list[float]] = {side: [] for side in sides}
    budget = Budget(rounds, seconds, min_rounds=5)
    for r in budget:
        order = sides[r % len(sides) :] + sides[: r % len(sides)]
        if r % miss_every == 0:
            order.append(("memory", "miss"))
        for name, kind in order:
            client = clients[name]
            if kind == "healthz":
                elapsed, _ = clock(lambda c=client: c.get("/healthz"))
            else:
                miss = kind == "miss"
                elapsed, response = clock(lambda c=client, m=miss: speak(c, text, no_cache=m))
                expected = "bypass" if miss else "hit"
                if response.headers["x-cache"] != expected:
                    raise RuntimeError(f"round {r}: {name} answered {response.headers}")
            times.setdefault((name, kind), []).append(elapsed)
    out: dict[str, Any] = {"loop": budget.report()}
    for name in clients:
        health = times[(name, "healthz")]
        server: dict[str, Any] = {"healthz_s": distribution(health)}
        for kind in ("hit", "miss"):
            values = times.get((name, kind))
            if values:
                server[f"{kind}_s"] = distribution(values)
                server[f"{kind}_server_estimate_ms"] = round(
                    (median(values) - median(health)) * 1000, 3
                )
        out[name] = server
    return out


def run_zipf(url: str, texts: list[str], sequence: list[int], clients: int) -> dict[str, Any]:
    """Send ``sequence`` (phrase indices) from ``clients`` threads; each thread its own
    connection, taking the next request as soon as its last one is answered."""
    local = threading.local()
    opened: list[httpx.Client] = []
    lock = threading.Lock()

    def one(index: int) -> tuple[float, float, str]:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=600)
            with lock:
                opened.append(client)
        elapsed, response = clock(lambda: speak(client, texts[index]))
        audio = soundfile.info(io.BytesIO(response.content)).duration
        return elapsed, audio, response.headers.get("x-cache", "off")

    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one, sequence))
    finally:
        for client in opened:
            client.close()
    wall = time.perf_counter() - start
    audio = sum(a for _, a, _ in results)
    outcomes = [c for _, _, c in results]
    return {
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(results) / wall, 3),
        "audio_s_per_s": round(audio / wall, 3),
        "audio_s": round(audio, 3),
        "latency_s": distribution([e for e, _, _ in results]),
        "cache_results": {c: outcomes.count(c) for c in sorted(set(outcomes))},
    }


def latency_rows(name: str, latency: dict[str, Any], target: float) -> list[tuple[object, ...]]:
    """Table rows for one server: /healthz, the hit (with its target), the miss if any."""

    def row(label: str, key: str, estimate: object = "", goal: object = "") -> tuple[object, ...]:
        d = latency[key]
        return (label, d["n"], d["median"], d["p99"], estimate, goal)

    hit = latency["hit_server_estimate_ms"]
    rows = [
        row(f"healthz ({name} server)", "healthz_s"),
        row(f"{name} hit", "hit_s", hit, f"<= {target:g} {verdict(hit, target)}"),
    ]
    if "miss_s" in latency:
        rows.append(row("miss (no-cache)", "miss_s", latency["miss_server_estimate_ms"]))
    return rows


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    started = time.monotonic()
    live_server = import_live_server()
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from redis_server import RedisServer

    quick = args.quick
    rounds, seconds = (30, 20) if quick else (400, 240)
    miss_every = 6 if quick else 10
    n_phrases, n_requests, clients = (40, 60, 4) if quick else (200, 300, 4)
    text = SHORT[0]
    texts = phrases(n_phrases)
    cold = zipf_sequence(n_phrases, n_requests, ZIPF_S, SEED)
    warm = zipf_sequence(n_phrases, n_requests, ZIPF_S, SEED + 1)
    env = {k: v for k, v in BENCH_ENV.items() if k != "VOXSERVE_CACHE"}

    with (
        RedisServer() as redis_server,
        live_server(env={**env, "VOXSERVE_CACHE": "memory"}) as memory_server,
        live_server(
            env={**env, "VOXSERVE_CACHE": "redis", "REDIS_URL": redis_server.url}
        ) as redis_cached_server,
        httpx.Client(base_url=memory_server.url, timeout=300) as memory_client,
        httpx.Client(base_url=redis_cached_server.url, timeout=300) as redis_client,
    ):
        latency = measure_latency(
            {"memory": memory_client, "redis": redis_client},
            text,
            rounds=rounds,
            seconds=seconds,
            miss_every=miss_every,
        )
        # Cold: the cache starts empty, as after a deploy. Warm: a new draw of the same
        # mix on the filled cache, the steady state of a long-running replica.
        zipf_cold = run_zipf(memory_server.url, texts, cold, clients)
        zipf_warm = run_zipf(memory_server.url, texts, warm, clients)

    with live_server(env={**env, "VOXSERVE_CACHE": "off"}) as server:
        zipf_off = run_zipf(server.url, texts, cold, clients)

    def ratios(cached: dict[str, Any]) -> dict[str, float]:
        return {
            "requests_per_s": round(cached["requests_per_s"] / zipf_off["requests_per_s"], 3),
            "audio_s_per_s": round(cached["audio_s_per_s"] / zipf_off["audio_s_per_s"], 3),
        }

    results = {
        "latency": {"text": text, **latency},
        "zipf": {
            "distinct_phrases_requested": {"cold": len(set(cold)), "warm": len(set(warm))},
            "memory_cold": zipf_cold,
            "memory_warm": zipf_warm,
            "off": zipf_off,
            "ratio_cold_over_off": ratios(zipf_cold),
            "ratio_warm_over_off": ratios(zipf_warm),
            "ideal_cold_ratio": round(len(cold) / len(set(cold)), 3),
        },
    }
    targets = {
        "memory_hit_server_estimate_ms_max": MEMORY_HIT_MS_TARGET,
        "redis_hit_server_estimate_ms_max": REDIS_HIT_MS_TARGET,
        "zipf_ratio_min": ZIPF_RATIO_TARGET,
    }
    config = {
        "route": ROUTE, "format": "wav", "stream": False, "voice": VOICE,
        "noise": "noise_scale=0, noise_w=0", "server_env": env,
        "latency_rounds_asked": rounds, "miss_every_rounds": miss_every,
        "zipf": {"phrases": n_phrases, "requests": n_requests, "s": ZIPF_S,
                 "clients": clients, "seed": SEED},
        "client": f"httpx {httpx.__version__}",
    }  # fmt: skip
    path = write_result(
        "cache", quick=quick, config=config, results=results, targets=targets, out=args.out
    )

    memory_latency, redis_latency = latency["memory"], latency["redis"]
    print_table(
        f"Latency of {text!r} as wav, stream=false (client side, s)",
        ["request", "n", "p50", "p99", "p50 - healthz ms", "target ms"],
        [
            *latency_rows("memory", memory_latency, MEMORY_HIT_MS_TARGET),
            *latency_rows("redis", redis_latency, REDIS_HIT_MS_TARGET),
        ],
    )
    print_table(
        f"Zipf mix: {n_requests} requests, {n_phrases} phrases, s={ZIPF_S}, {clients} clients",
        ["cache", "req/s", "audio s/s", "p50 s", "p99 s", "results"],
        [
            (
                name,
                z["requests_per_s"],
                z["audio_s_per_s"],
                z["latency_s"]["median"],
                z["latency_s"]["p99"],
                z["cache_results"],
            )
            for name, z in (
                ("memory, cold", zipf_cold),
                ("memory, warm", zipf_warm),
                ("off", zipf_off),
            )
        ],
    )
    for name, z in (("cold", zipf_cold), ("warm", zipf_warm)):
        ratio = z["requests_per_s"] / zipf_off["requests_per_s"]
        ok = "ok" if ratio >= ZIPF_RATIO_TARGET else "UNDER"
        print(
            f"Zipf throughput memory ({name}) / off: {ratio:.2f}x "
            f"[{ok}, target >= {ZIPF_RATIO_TARGET:g}x]"
        )
    ideal = results["zipf"]["ideal_cold_ratio"]
    print(f"(a cold cache can at best reach {ideal:.2f}x on this mix: requests / distinct)")
    print(f"Wrote {path} in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
