"""Soak: 2,000 varied requests from 8 clients within 90 s, with the server's RSS sampled.

The server runs with the memory cache (the default). The mix: 78 % repeats of two short
replies in every format, whole and streamed (cache hits after their first time), 5 % the
same with ``Cache-Control: no-cache`` (synthesized again under load), 12 % fresh short
sentences (misses), 5 % ``/api/tts`` and ``/process``. The server's RSS is read every
0.5 s.

Checks: all requests sent within the time; every answer a 200 with the same audio as the
request alone; peak RSS under the memory limits of compose.yaml (voxserve service) and of
the Helm chart's values.yaml.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from typing import Any

import httpx
import yaml  # type: ignore[import-untyped]

from reliability.harness import ROOT, SHORT, Context, Result, Sampler, pcts, serve
from reliability.traffic import ALL_FORMATS, COQUI, MARY, Outcome, Req, send, tally

NAME = "soak"
CLIENTS = 8
REPEATED = SHORT[:2]


def scale(quick: bool) -> dict[str, Any]:
    if quick:
        return {"requests": 200, "clients": CLIENTS, "time_limit_s": 30.0}
    return {"requests": 2000, "clients": CLIENTS, "time_limit_s": 80.0}


def memory_bytes(text: str) -> int:
    """``1G`` (Docker: binary), ``2Gi`` or ``2G`` (Kubernetes: binary or decimal) in bytes."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?)(i?)[bB]?\s*", str(text), re.IGNORECASE)
    if match is None:
        raise ValueError(f"cannot read the memory limit {text!r}")
    number, unit, binary = match.groups()
    power = " KMGT".index(unit.upper() or " ")
    return int(float(number) * (1024 if binary else 1000) ** power)


def deployment_limits() -> dict[str, int]:
    """The voxserve container's memory limit in compose.yaml and in the Helm values."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    compose_limit = compose["services"]["voxserve"]["deploy"]["resources"]["limits"]["memory"]
    helm = yaml.safe_load((ROOT / "deploy/helm/voxserve/values.yaml").read_text())
    helm_limit = helm["resources"]["limits"]["memory"]
    # Docker reads 1G as GiB; Kubernetes reads G as 10^9 and Gi as 2^30.
    compose_bytes = memory_bytes(str(compose_limit).rstrip("bB").upper() + "i")
    return {"compose": compose_bytes, "helm": memory_bytes(helm_limit)}


def reference_requests() -> list[Req]:
    return [Req(t, f, s) for t in REPEATED for f in ALL_FORMATS for s in (False, True)]


def pick(rng: random.Random, n: int) -> Req:
    roll = rng.random()
    if roll < 0.78:
        return rng.choice(reference_requests())
    if roll < 0.83:
        req = rng.choice(reference_requests())
        return Req(req.text, req.format, req.stream, bypass=True)
    if roll < 0.95:
        return Req(f"Ticket {n} is ready.", rng.choice(ALL_FORMATS), rng.random() < 0.5)
    return Req(rng.choice(REPEATED), path=rng.choice((COQUI, MARY)))


async def clients(url: str, sizes: dict[str, Any]) -> tuple[list[Outcome], float]:
    """Closed-loop clients taking numbered requests until all are sent or time is up."""
    numbers = iter(range(sizes["requests"]))
    outcomes: list[Outcome] = []
    stop_at = time.monotonic() + sizes["time_limit_s"]
    rng = random.Random(7)

    async def client_loop(client: httpx.AsyncClient) -> None:
        for n in numbers:
            if time.monotonic() > stop_at:
                return
            outcomes.append(await send(client, pick(rng, n), timeout=30))

    started = time.monotonic()
    limits = httpx.Limits(max_connections=sizes["clients"])
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(sizes["clients"])))
    return outcomes, time.monotonic() - started


async def run(ctx: Context) -> Result:
    result = Result(NAME, ctx)
    sizes = scale(ctx.quick)
    env = ctx.env(VOXSERVE_CACHE="memory")
    limits = deployment_limits()
    result.config = sizes | {"memory_limits_bytes": limits, "server_env": env}
    refs = ctx.references
    async with serve(env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            await refs.prepare(client, reference_requests())
        rss_before = server.rss()
        async with Sampler(server.rss, every=0.5) as rss:
            outcomes, wall = await clients(server.url, sizes)
        hits = await server.metric("voxserve_cache_requests_total", result="hit")
        lookups = hits + await server.metric("voxserve_cache_requests_total", result="miss")
        peak = int(rss.peak)
        answered = tally(outcomes, refs)
        result.figures = answered | {
            "wall_s": round(wall, 2),
            "requests_per_s": round(len(outcomes) / wall, 1),
            "latency_s": pcts([o.latency for o in outcomes if o.latency is not None]),
            "cache_hit_ratio": round(hits / lookups, 3) if lookups else None,
            "rss_mb": {
                "before": round(rss_before / 2**20, 1),
                "peak": round(peak / 2**20, 1),
                "end": round(server.rss() / 2**20, 1),
                "samples": len(rss.samples),
            },
        }
        result.check(
            "requests_sent",
            len(outcomes) >= sizes["requests"],
            len(outcomes),
            f">= {sizes['requests']} within {sizes['time_limit_s']:g} s",
        )
        result.none_of("errors", answered["problems"], "answers other than 200")
        result.check("all_200", answered["statuses"].get("200", 0) == len(outcomes),
                     answered["statuses"], "every answer 200")  # fmt: skip
        for where, limit in limits.items():
            result.at_most(f"peak_rss_under_{where}_limit_mb", peak / 2**20, limit / 2**20, "MB")
        if not result.passed:
            result.figures["server_log_tail"] = server.log_tail()
    return result
