"""Cache speed over HTTP: what a hit costs next to a miss, and what a cache buys under a
Zipf-distributed load.

Starts real servers (``tests/live.py``'s LiveServer: ``python -m voxserve serve`` on a
free 127.0.0.1 port, CPU, the Piper voice only) and a real ``redis-server``
(``tests/redis_server.py``), then measures with httpx from this process:

a. Latency of one short text, ``stream=false``, wav, noise 0, p50 and p99 on the client:
   a memory hit, a Redis hit, and a miss on the same text (``Cache-Control: no-cache``
   makes the server synthesize and store it again), each alternated round by round with
   ``GET /healthz`` on the same server and connection. The time a request spends in the
   server cannot be seen from outside, so ``server_estimate_ms`` = p50(request) −
   p50(/healthz): what the route costs beyond an empty one. Targets: memory hit
   <= 2 ms, Redis hit <= 5 ms.
b. Throughput of a Zipf mix (rank k drawn with probability ∝ 1/k^s over N phrases;
   R requests from C concurrent clients, the same sequence for both sides) against a
   server with the memory cache and one with ``VOXSERVE_CACHE=off``: requests/s and
   seconds of audio served per wall second, and their ratio. Target >= 5x.

The cached side starts cold, so its misses count. The two throughput sides run one
after the other (each needs the whole machine); the load average in the JSON says how
comparable they were. Run: ``.venv/bin/python benchmarks/bench_cache.py [--quick]``.
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
    client: httpx.Client, text: str, *, rounds: int, seconds: float, miss_every: int | None
) -> dict[str, Any]:
    """Hit vs /healthz, alternated; with ``miss_every``, a miss every that many rounds."""
    first = speak(client, text)  # stores the entry (or hits one left by an earlier run)
    if speak(client, text).headers.get("x-cache") != "hit":
        raise RuntimeError("the second request for the same text was not a cache hit")
    health: list[float] = []
    hits: list[float] = []
    misses: list[float] = []
    budget = Budget(rounds, seconds, min_rounds=5)
    for r in budget:
        sides = ["hit", "health"] if r % 2 == 0 else ["health", "hit"]
        if miss_every and r % miss_every == 0:
            sides.append("miss")
        for side in sides:
            if side == "health":
                elapsed, _ = clock(lambda: client.get("/healthz"))
                health.append(elapsed)
            elif side == "hit":
                elapsed, response = clock(lambda: speak(client, text))
                if response.headers["x-cache"] != "hit":
                    raise RuntimeError(f"round {r}: expected a hit, got {response.headers}")
                hits.append(elapsed)
            else:
                elapsed, response = clock(lambda: speak(client, text, no_cache=True))
                if response.headers["x-cache"] != "bypass":
                    raise RuntimeError(f"round {r}: expected a bypass, got {response.headers}")
                misses.append(elapsed)
    out: dict[str, Any] = {
        "bytes": len(first.content),
        "healthz_s": distribution(health),
        "hit_s": distribution(hits),
        "hit_server_estimate_ms": round((median(hits) - median(health)) * 1000, 3),
        "loop": budget.report(),
    }
    if misses:
        out["miss_s"] = distribution(misses)
        out["miss_server_estimate_ms"] = round((median(misses) - median(health)) * 1000, 3)
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
    sequence = zipf_sequence(n_phrases, n_requests, ZIPF_S, SEED)
    env = {k: v for k, v in BENCH_ENV.items() if k != "VOXSERVE_CACHE"}

    with RedisServer() as redis_server:
        redis_env = {**env, "VOXSERVE_CACHE": "redis", "REDIS_URL": redis_server.url}
        with (
            live_server(env=redis_env) as server,
            httpx.Client(base_url=server.url, timeout=300) as client,
        ):
            redis_latency = measure_latency(
                client, text, rounds=rounds, seconds=seconds, miss_every=None
            )

    with live_server(env={**env, "VOXSERVE_CACHE": "memory"}) as server:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            memory_latency = measure_latency(
                client, text, rounds=rounds, seconds=seconds, miss_every=miss_every
            )
        zipf_memory = run_zipf(server.url, texts, sequence, clients)

    with live_server(env={**env, "VOXSERVE_CACHE": "off"}) as server:
        zipf_off = run_zipf(server.url, texts, sequence, clients)

    ratio = zipf_memory["requests_per_s"] / zipf_off["requests_per_s"]
    audio_ratio = zipf_memory["audio_s_per_s"] / zipf_off["audio_s_per_s"]
    results = {
        "latency": {"text": text, "memory": memory_latency, "redis": redis_latency},
        "zipf": {
            "distinct_phrases_requested": len(set(sequence)),
            "memory": zipf_memory,
            "off": zipf_off,
            "ratio_requests_per_s": round(ratio, 3),
            "ratio_audio_s_per_s": round(audio_ratio, 3),
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
            for name, z in (("memory", zipf_memory), ("off", zipf_off))
        ],
    )
    ok = "ok" if ratio >= ZIPF_RATIO_TARGET else "UNDER"
    print(f"\nZipf throughput memory/off: {ratio:.2f}x [{ok}, target >= {ZIPF_RATIO_TARGET:g}x]")
    print(f"Wrote {path} in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
