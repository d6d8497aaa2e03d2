"""A model of the sustained load pattern, to choose the scheduler's order for whole responses.

Not a measurement: benchmarks/bench_load.py ``--pattern sustained`` measures the real
server. This replays that pattern in simulated time, so that a policy's effect on the
median and the tail can be seen apart from the noise of a shared 2-core machine:

- 16 closed-loop clients, each sending its next request as soon as the last is answered;
  the texts are bench_load's MIX, drawn at random (seeded) so no phase of the mix repeats;
- each sentence costs its characters x 0.06 s of audio x 0.05 real-time factor on the
  whole machine, 1.6 x that on one of the 2 lanes (docs/performance.md's lane figures);
  a sentence runs alone, on both lanes, when nothing else is queued;
- a whole response queues up to 3 sentences at once (STREAM_LOOKAHEAD + 1), every one
  due at ``voxserve.deadlines.first_due`` with the stretch and the bound under test.

By Little's law the mean latency is set by the throughput (16 / requests per second), so
no order changes it; the order decides how it splits between the median and the tail.

Run: ``.venv/bin/python benchmarks/model_sustained.py``, which writes
results/model_sustained.json.
"""

from __future__ import annotations

import heapq
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_load import MIX
from common import percentile, print_table, write_result
from voxserve.deadlines import MAX_OVERTAKE_S, WHOLE_STRETCH

SECONDS_PER_CHAR = 0.06 * 0.05
LANE_SLOWDOWN = 1.6
FOOTPRINT = 3
CLIENTS = 16
REQUESTS = 3000
DEFER = 10.0
#: (stretch, bound) pairs compared; the first is plain due order, the last voxserve's.
POLICIES = ((1.0, float("inf")), (4.0, float("inf")), (32.0, 20.0), (64.0, 25.0),
            (64.0, 30.0), (WHOLE_STRETCH, MAX_OVERTAKE_S))  # fmt: skip


def costs_of(text: str) -> list[float]:
    return [len(s) * SECONDS_PER_CHAR for s in re.split(r"(?<=[.!?])\s+", text) if s]


def run(stretch: float, bound: float, seed: int) -> list[float]:
    """Latencies of REQUESTS whole responses under one (stretch, bound)."""
    rng = random.Random(seed)
    texts = [costs_of(t) for t in MIX]
    queue: list[tuple[float, int, int, int]] = []  # (due, arrival order, request, sentence)
    running: list[tuple[float, int, int, int]] = []  # (ends, order, request, lanes held)
    requests: list[dict[str, object]] = []
    order = 0
    now, free = 0.0, 2
    latencies: list[float] = []

    def queue_next(rid: int) -> None:
        nonlocal order
        r = requests[rid]
        costs, due = r["costs"], r["due"]
        assert isinstance(costs, list)
        assert isinstance(due, float)
        index = r["queued"]
        assert isinstance(index, int)
        heapq.heappush(queue, (due, order, rid, index))
        order += 1
        r["queued"] = index + 1

    def arrive() -> None:
        costs = texts[rng.randrange(len(texts))]
        due = now + DEFER + min(stretch * sum(costs), bound)
        requests.append({"costs": costs, "due": due, "start": now, "queued": 0, "done": 0})
        for _ in range(min(FOOTPRINT, len(costs))):
            queue_next(len(requests) - 1)

    for _ in range(CLIENTS):
        arrive()
    while len(latencies) < REQUESTS:
        while free and queue:
            _, _, rid, index = heapq.heappop(queue)
            cost = requests[rid]["costs"][index]  # type: ignore[index]
            alone = free == 2 and not queue
            held = 2 if alone else 1
            free -= held
            heapq.heappush(
                running, (now + cost * (1 if alone else LANE_SLOWDOWN), order, rid, held)
            )
            order += 1
        now, _, rid, held = heapq.heappop(running)
        free += held
        r = requests[rid]
        r["done"] = int(r["done"]) + 1  # type: ignore[call-overload]
        n = len(r["costs"])  # type: ignore[arg-type]
        if int(r["queued"]) < n:  # type: ignore[call-overload]
            queue_next(rid)
        if r["done"] == n:
            latencies.append(now - float(r["start"]))  # type: ignore[arg-type]
            arrive()
    return latencies


def main() -> None:
    rows, results = [], {}
    for stretch, bound in POLICIES:
        name = f"stretch {stretch:g}, bound {bound:g} s"
        per_seed = []
        for seed in (1, 2, 3):
            lat = run(stretch, bound, seed)
            per_seed.append({q: round(percentile(lat, q), 2) for q in (50, 95, 99)}
                            | {"mean": round(sum(lat) / len(lat), 2)})  # fmt: skip
        results[name] = per_seed
        rows.append(
            (name, *(" / ".join(str(s[k]) for s in per_seed) for k in (50, 95, 99, "mean")))
        )
    print_table("Modelled whole-response latency, seeds 1 / 2 / 3 (s)",
                ["policy", "p50", "p95", "p99", "mean"], rows)  # fmt: skip
    path = write_result(
        "model_sustained",
        quick=False,
        config={"clients": CLIENTS, "requests": REQUESTS, "seconds_per_char": SECONDS_PER_CHAR,
                "lane_slowdown": LANE_SLOWDOWN, "footprint": FOOTPRINT, "defer": DEFER},
        results=results,
        targets={},
    )  # fmt: skip
    print(f"\nWrote {path}")


if __name__ == "__main__":
    main()
