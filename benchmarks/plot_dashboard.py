"""The Grafana dashboard's main panels, drawn with matplotlib from a real scrape.

Starts the real server (``tests/live.py``'s LiveServer, memory cache on, CPU), drives a
bounded mix of real traffic for ``--seconds`` (default 60) from ``--concurrency`` (4)
clients: short replies and paragraphs that repeat (cache hits), unique sentences and the
occasional long article (misses), some streamed, some through the Coqui route, and a
few bad requests (400, 404). Meanwhile it reads ``/metrics`` every ``--scrape`` (2)
seconds, as Prometheus would, and computes what the dashboard's PromQL computes over a
sliding window of ``--window`` (10) seconds: counter rates, quantiles from histogram
bucket deltas (Prometheus' interpolation), the cache hit ratio and the queue depth.

Writes a 2 x 3 grid to ``docs/img/dashboard.png`` (``--out``). Grafana itself is not
installable here, so this picture stands in for its screenshot.
Run: ``.venv/bin/python benchmarks/plot_dashboard.py``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import import_live_server, machine_info, print_table
from texts import LONG_ARTICLE, PARAGRAPHS, SHORT

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "img" / "dashboard.png"
SERVER_ENV = {
    "VOXSERVE_CACHE": "memory",
    "VOXSERVE_DEVICE": "cpu",
    "VOXSERVE_ESPEAK": "false",
    "VOXSERVE_LOG_LEVEL": "WARNING",
}
#: At most this many requests per client, whatever the duration: the loop is bounded.
MAX_REQUESTS_PER_CLIENT = 2000

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]


@dataclass(frozen=True)
class Scrape:
    """One read of ``/metrics``."""

    t: float
    """Seconds since the traffic started."""
    samples: Samples
    """Value of every sample, by (sample name, sorted labels)."""


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


# --- what the dashboard's PromQL computes, on two scrapes -----------------------------


def total(
    scrape: Scrape, name: str, keep: Callable[[dict[str, str]], bool] = lambda _: True
) -> float:
    return sum(v for (n, labels), v in scrape.samples.items() if n == name and keep(dict(labels)))


def increase(old: Scrape, new: Scrape, name: str, **match: str) -> float:
    """Increase of the sum of ``name``'s series whose labels include ``match``."""

    def keep(labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in match.items())

    return total(new, name, keep) - total(old, name, keep)


def rate(old: Scrape, new: Scrape, name: str, **match: str) -> float:
    return increase(old, new, name, **match) / (new.t - old.t)


def histogram_quantile(q: float, old: Scrape, new: Scrape, histogram: str) -> float:
    """``histogram_quantile(q, sum by (le) (increase(<histogram>_bucket[window])))``.

    The same linear interpolation inside the bucket as Prometheus; NaN without data.
    """
    deltas: Counter[float] = Counter()
    for scrape, sign in ((new, 1), (old, -1)):
        for (name, labels), value in scrape.samples.items():
            if name == f"{histogram}_bucket":
                deltas[float(dict(labels)["le"])] += sign * value
    bounds = sorted(deltas)
    if not bounds or deltas[math.inf] <= 0:
        return math.nan
    rank = q * deltas[math.inf]
    lower, below = 0.0, 0.0
    for upper in bounds:
        count = deltas[upper]
        if count >= rank:
            if upper == math.inf:
                return lower  # Prometheus answers the highest finite bound
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return math.nan


def gauge_max(scrape: Scrape, name: str) -> float:
    values = [v for (n, _), v in scrape.samples.items() if n == name]
    return max(values) if values else math.nan


# --- traffic ---------------------------------------------------------------------------


def requests_mix(seed: int) -> Iterable[tuple[str, str, dict[str, object]]]:
    """Endless (kind, route, body) choices, the same for the same seed."""
    rng = random.Random(seed)
    for n in itertools.count():
        roll = rng.random()
        stream = rng.random() < 0.3
        if roll < 0.40:
            kind, text = "short repeat", rng.choice(SHORT)
        elif roll < 0.55:
            kind, text = "paragraph repeat", rng.choice(PARAGRAPHS)
        elif roll < 0.79:
            kind, text = "unique", f"Order {seed}-{n} is ready: {rng.randint(2, 99)} items."
        elif roll < 0.82:
            kind, text = "long unique", f"Part {seed}-{n}. {LONG_ARTICLE}"
        elif roll < 0.92:
            yield "coqui", "/api/tts", {"text": rng.choice(SHORT)}
            continue
        elif roll < 0.96:
            yield "bad: empty", "/v1/audio/speech", {"input": "", "voice": "alloy"}
            continue
        else:
            yield "bad: voice", "/v1/audio/speech", {"input": "Hello.", "voice": "nobody-xx"}
            continue
        body = {"input": text, "voice": "alloy", "response_format": "wav", "stream": stream}
        yield kind, "/v1/audio/speech", body


def client_loop(url: str, seed: int, deadline: float, sent: Counter[str]) -> None:
    with httpx.Client(base_url=url, timeout=120) as client:
        mix = requests_mix(seed)
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= deadline:
                return
            kind, route, body = next(mix)
            if route == "/api/tts":
                response = client.get(route, params=body)
            else:
                response = client.post(route, json=body)
            sent[f"{kind} -> {response.status_code}"] += 1


def scrape_loop(
    url: str, every: float, start: float, stop: threading.Event, out: list[Scrape]
) -> None:
    with httpx.Client(timeout=10) as client:
        while True:
            t = time.monotonic()
            out.append(Scrape(t - start, parse(client.get(url + "/metrics").text)))
            if stop.wait(max(0.0, every - (time.monotonic() - t))):
                return


def drive(args: argparse.Namespace) -> tuple[list[Scrape], Counter[str]]:
    live_server = import_live_server()
    scrapes: list[Scrape] = []
    sent: Counter[str] = Counter()
    with live_server(env=SERVER_ENV) as server:
        start = time.monotonic()
        deadline = start + args.seconds
        stop = threading.Event()
        scraper = threading.Thread(
            target=scrape_loop, args=(server.metrics_url, args.scrape, start, stop, scrapes)
        )
        clients = [
            threading.Thread(target=client_loop, args=(server.url, seed, deadline, sent))
            for seed in range(args.concurrency)
        ]
        scraper.start()
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        time.sleep(args.scrape)  # one more scrape after the last request
        stop.set()
        scraper.join()
    return scrapes, sent


# --- the picture ---------------------------------------------------------------------


def series(
    scrapes: list[Scrape], steps: int, fn: Callable[[Scrape, Scrape], float]
) -> tuple[list[float], list[float]]:
    """``fn(old, new)`` at each scrape over the last ``steps`` scrape intervals."""
    points = [(new.t, fn(old, new)) for old, new in zip(scrapes, scrapes[steps:], strict=False)]
    return [t for t, _ in points], [v for _, v in points]


def plot(scrapes: list[Scrape], args: argparse.Namespace, sent: Counter[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = max(1, round(args.window / args.scrape))
    # Small markers: a window holding one observation is a lone point, no line.
    plt.rcParams.update({"lines.marker": ".", "lines.markersize": 4})
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5), constrained_layout=True)
    (ax_rate, ax_lat, ax_ttfa), (ax_rtf, ax_cache, ax_queue) = axes

    statuses = sorted(
        {dict(lb)["status"] for (n, lb) in scrapes[-1].samples if n == "voxserve_requests_total"}
    )
    for status in statuses:
        t, v = series(
            scrapes, steps, lambda o, n, s=status: rate(o, n, "voxserve_requests_total", status=s)
        )
        ax_rate.plot(t, v, label=status)
    ax_rate.set(title="Request rate by status", ylabel="requests / s")

    for q, style in ((0.5, "-"), (0.95, "--"), (0.99, ":")):
        t, v = series(
            scrapes,
            steps,
            lambda o, n, q=q: histogram_quantile(q, o, n, "voxserve_request_duration_seconds"),
        )
        ax_lat.plot(t, v, linestyle=style, label=f"p{round(q * 100)}")
    ax_lat.set(title="Request latency (successful speech requests)", ylabel="seconds")

    for q, style in ((0.5, "-"), (0.95, "--")):
        t, v = series(
            scrapes,
            steps,
            lambda o, n, q=q: histogram_quantile(q, o, n, "voxserve_time_to_first_audio_seconds"),
        )
        ax_ttfa.plot(t, v, linestyle=style, label=f"p{round(q * 100)}")
    ax_ttfa.set(title="Time to first audio", ylabel="seconds")

    for q, style in ((0.5, "-"), (0.95, "--")):
        t, v = series(
            scrapes,
            steps,
            lambda o, n, q=q: histogram_quantile(q, o, n, "voxserve_real_time_factor"),
        )
        ax_rtf.plot(t, v, linestyle=style, label=f"p{round(q * 100)}")
    ax_rtf.set(title="Real-time factor (synthesis time / audio time)", ylabel="ratio")

    def hit_ratio(old: Scrape, new: Scrape) -> float:
        hits = increase(old, new, "voxserve_cache_requests_total", result="hit")
        misses = increase(old, new, "voxserve_cache_requests_total", result="miss")
        return hits / (hits + misses) if hits + misses else math.nan

    t, v = series(scrapes, steps, hit_ratio)
    ax_cache.plot(t, v, label="memory")
    ax_cache.set(title="Cache hit ratio = hits / (hits + misses)", ylabel="ratio", ylim=(0, 1))

    t = [s.t for s in scrapes]
    ax_queue.plot(
        t, [gauge_max(s, "voxserve_queue_depth") for s in scrapes], label="queue depth (sentences)"
    )
    ax_queue.plot(
        t,
        [gauge_max(s, "voxserve_requests_in_flight") for s in scrapes],
        linestyle="--",
        label="requests in flight",
    )
    ax_queue.set(title="Scheduler queue depth (sampled at each scrape)", ylabel="count")

    for ax in axes.flat:
        ax.set_xlabel("seconds since traffic started")
        ax.set_xlim(0, max(t) + 1)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")

    machine = machine_info()
    load = machine["load_average_1_5_15"][0]
    requests = sum(sent.values())
    fig.suptitle(
        f"voxserve under {args.seconds:g} s of real traffic ({requests} requests, "
        f"{args.concurrency} clients, cache on) - /metrics scraped every {args.scrape:g} s, "
        f"rates and quantiles over a {steps * args.scrape:g} s window\n"
        "matplotlib rendering of the Grafana dashboard's queries; "
        f"{machine['cpus_usable']} CPU cores ({machine['cpu_model']}; 1-min load average "
        f"{load:g} at the end), "
        f"voxserve {machine['voxserve']}, onnxruntime {machine['onnxruntime']}",
        fontsize="medium",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="how long to send traffic")
    parser.add_argument("--concurrency", type=int, default=4, help="clients sending at once")
    parser.add_argument("--scrape", type=float, default=2, help="seconds between scrapes")
    parser.add_argument("--window", type=float, default=10, help="rate/quantile window, seconds")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the PNG")
    args = parser.parse_args()

    scrapes, sent = drive(args)
    plot(scrapes, args, sent, args.out)
    print_table("Requests sent (kind -> status)", ["kind -> status", "count"], sorted(sent.items()))
    last, first = scrapes[-1], scrapes[0]
    print_table(
        f"Whole run, from {len(scrapes)} scrapes",
        ["metric", "value"],
        [
            ("requests / s", rate(first, last, "voxserve_requests_total")),
            (
                "p50 latency s",
                histogram_quantile(0.5, first, last, "voxserve_request_duration_seconds"),
            ),
            (
                "p95 latency s",
                histogram_quantile(0.95, first, last, "voxserve_request_duration_seconds"),
            ),
            (
                "p95 time to first audio s",
                histogram_quantile(0.95, first, last, "voxserve_time_to_first_audio_seconds"),
            ),
            (
                "p50 real-time factor",
                histogram_quantile(0.5, first, last, "voxserve_real_time_factor"),
            ),
            ("cache hits", increase(first, last, "voxserve_cache_requests_total", result="hit")),
            ("cache misses", increase(first, last, "voxserve_cache_requests_total", result="miss")),
        ],
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
