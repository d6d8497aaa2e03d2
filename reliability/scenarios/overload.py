"""Overload: 100, then 300 closed-loop clients of mixed requests, far past what 2 cores serve.

Each client sends its next request as soon as the previous one is answered (after a 503
it waits what ``Retry-After`` says, at most 2 s, times a random 0.5-1). The mix: 70 %
one-sentence replies and 30 % paragraphs, half streamed and half whole, in wav, mp3, opus,
flac and pcm, plus 10 % ``/api/tts``. A separate process asks ``/healthz`` every 100 ms.
After each level's load time no new request starts; those still open 5 s later are
hung up and counted as ``unfinished`` (their elapsed time enters the latency figures as
a lower bound). After the last level, one short request at a time measures how long the
server takes to answer at its normal speed again.

Checks, per level: every answer is a 200 equal to its reference or a 503 with
``Retry-After`` and a JSON error; admitted requests' p95 latency <= 2 x the server's wait
bound (``VOXSERVE_MAX_WAIT_SECONDS``, 10 s unless set); streamed time to first audio
p95 <= 3 s; ``/healthz`` p99 <= 100 ms. Then: normal latency again within 5 s.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any

import httpx

from reliability.harness import PARAGRAPHS, SHORT, Context, Result, pcts, serve
from reliability.traffic import COQUI, FORMATS, Outcome, References, Req, send, tally

NAME = "overload"
#: The server's wait bound when VOXSERVE_MAX_WAIT_SECONDS is not set.
DEFAULT_MAX_WAIT_S = 10.0
TTFA_P95_S = 3.0
HEALTHZ_P99_S = 0.1
RECOVERY_S = 5.0
#: Seconds in-flight requests may still finish after a level's load time.
GRACE_S = 5.0
#: A bound on each client's requests per level (time bounds it first in practice).
MAX_REQUESTS_PER_CLIENT = 200

SHORT_TEXTS = SHORT[:2]
LONG_TEXT = PARAGRAPHS[0]


def scale(quick: bool) -> dict[str, Any]:
    if quick:
        return {"levels": [10, 30], "load_s": 6.0, "recovery_probe_s": 10.0}
    return {"levels": [100, 300], "load_s": 20.0, "recovery_probe_s": 15.0}


def reference_requests() -> list[Req]:
    return [
        Req(text, fmt, stream)
        for text in (*SHORT_TEXTS, LONG_TEXT)
        for fmt in FORMATS
        for stream in (False, True)
    ]


def pick(rng: random.Random) -> Req:
    if rng.random() < 0.1:
        return Req(rng.choice(SHORT_TEXTS), path=COQUI)
    text = rng.choice(SHORT_TEXTS) if rng.random() < 0.7 else LONG_TEXT
    return Req(text, rng.choice(FORMATS), rng.random() < 0.5)


async def client_loop(
    client: httpx.AsyncClient,
    rng: random.Random,
    stop_at: float,
    out: list[Outcome],
    open_since: dict[int, float],
) -> None:
    """Requests until ``stop_at``; ``open_since[id]`` is when its open request was sent."""
    me = id(rng)
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= stop_at:
            return
        open_since[me] = time.monotonic()
        outcome = await send(client, pick(rng), timeout=120)
        del open_since[me]
        out.append(outcome)
        if outcome.status == 503:
            try:
                wait = min(float(outcome.retry_after or 1), 2.0)
            except ValueError:
                wait = 1.0
            await asyncio.sleep(wait * rng.uniform(0.5, 1.0))


#: The /healthz probe runs in a process of its own, as a kubelet's does: in the load
#: generator's event loop its figures would be the generator's own queueing (at 300 clients
#: that loop cannot even keep the probe's 100 ms cadence). A new connection per probe.
PROBE = """
import json, sys, time, urllib.request
url, until, every, timeout = sys.argv[1], time.monotonic() + float(sys.argv[2]), 0.1, 2.0
out = []
while time.monotonic() < until:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=timeout) as response:
            ok = response.status == 200
    except Exception:
        ok = False
    out.append(time.monotonic() - started if ok else timeout)
    time.sleep(max(0.0, every - (time.monotonic() - started)))
print(json.dumps(out))
"""


async def healthz_probe(url: str, seconds: float) -> list[float]:
    """``/healthz`` every 100 ms for ``seconds`` from a separate process; a failure or a
    timeout counts as 2 s."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROBE, url, str(seconds), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    samples: list[float] = json.loads(out)
    return samples


async def level(
    url: str, clients: int, load_s: float, refs: References, seed: int
) -> tuple[dict[str, Any], float]:
    """One level; returns its figures and when its load ended."""
    outcomes: list[Outcome] = []
    open_since: dict[int, float] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        probe = asyncio.create_task(healthz_probe(url, load_s))
        started = time.monotonic()
        stop_at = started + load_s
        tasks = [
            asyncio.create_task(
                client_loop(client, random.Random(seed + n), stop_at, outcomes, open_since)
            )
            for n in range(clients)
        ]
        _, pending = await asyncio.wait(tasks, timeout=load_s + GRACE_S)
        ended = time.monotonic()
        unfinished = [ended - since for since in open_since.values()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        healthz = await probe
    admitted = [o for o in outcomes if o.status == 200 and o.latency is not None]
    latencies = [o.latency for o in admitted if o.latency is not None] + unfinished
    ttfa = [o.ttfa for o in admitted if o.req.stream and o.ttfa is not None]
    figures = tally(outcomes, refs) | {
        "clients": clients,
        "load_s": load_s,
        "wall_s": round(ended - started, 2),
        "unfinished": len(unfinished),
        "admitted_latency_s": pcts(latencies),
        "streamed_ttfa_s": pcts(ttfa),
        "healthz_s": pcts(healthz),
        "answers_per_s": round(len(outcomes) / (ended - started), 1),
    }
    return figures, ended


async def recovery(url: str, refs: References, since: float, probe_s: float) -> dict[str, Any]:
    """Seconds from ``since`` until a short request is answered at its normal speed."""
    req = Req(SHORT_TEXTS[0], "wav")
    normal = refs.latency[req.key]
    target = max(2 * normal, normal + 0.3)
    samples: list[float | None] = []
    recovered: float | None = None
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while time.monotonic() - since < probe_s:
            outcome = await send(client, req, timeout=probe_s)
            ok = outcome.status == 200 and refs.verdict(outcome) is None
            samples.append(round(outcome.latency, 4) if outcome.latency else None)
            if ok and outcome.latency is not None and outcome.latency <= target:
                recovered = time.monotonic() - since
                break
            await asyncio.sleep(0.1)
    return {
        "recovery_s": None if recovered is None else round(recovered, 3),
        "normal_latency_s": round(normal, 4),
        "normal_means_at_most_s": round(target, 4),
        "probe_latencies_s": samples,
    }


async def run(ctx: Context) -> Result:
    result = Result(NAME, ctx)
    sizes = scale(ctx.quick)
    env = ctx.env()
    bound = float(env.get("VOXSERVE_MAX_WAIT_SECONDS", DEFAULT_MAX_WAIT_S))
    result.config = sizes | {"max_wait_s": bound, "server_env": env}
    refs = ctx.references
    async with serve(env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            result.figures["references_s"] = round(
                await refs.prepare(client, reference_requests()), 2
            )
        ended = time.monotonic()
        for n, clients in enumerate(sizes["levels"]):
            figures, ended = await level(server.url, clients, sizes["load_s"], refs, seed=1000 * n)
            result.figures[f"clients_{clients}"] = figures
            result.none_of(
                f"errors_at_{clients}", figures["problems"], "answers other than 200/503"
            )
            result.at_most(
                f"admitted_p95_at_{clients}", figures["admitted_latency_s"].get("p95"), 2 * bound
            )
            result.at_most(
                f"ttfa_p95_at_{clients}", figures["streamed_ttfa_s"].get("p95"), TTFA_P95_S
            )
            result.at_most(
                f"healthz_p99_at_{clients}", figures["healthz_s"].get("p99"), HEALTHZ_P99_S
            )
        back = await recovery(server.url, refs, ended, sizes["recovery_probe_s"])
        result.figures["recovery"] = back
        result.at_most("recovery_s", back["recovery_s"], RECOVERY_S)
        if not result.passed:
            result.figures["server_log_tail"] = server.log_tail()
    return result
