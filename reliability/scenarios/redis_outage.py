"""Redis paused, then killed, under load, with the redis and then the tiered cache.

A real redis-server (tests/redis_server.py) on a free port serves as VOXSERVE_CACHE_URL.
Eight closed-loop clients ask for repeated short replies (cache hits) and fresh sentences
(misses, then stores). A few seconds in, redis is stopped with SIGSTOP for 3 s (it keeps
its port and answers nothing, so every cache call waits for its timeout), resumed with
SIGCONT, then killed with SIGKILL (the port refuses connections); the load goes on.

Checks, per cache: every request gets a 200 with the same audio as alone (the cache treats
its errors as misses).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx

from reliability.harness import SHORT, Context, Result, pcts, redis_server_class, serve
from reliability.traffic import Outcome, References, Req, send, tally

NAME = "redis"
CLIENTS = 8
PAUSE_S = 3.0
CACHES = ("redis", "tiered")


def scale(quick: bool) -> dict[str, Any]:
    # seconds of load before the pause, between the resume and the kill, after the kill
    if quick:
        return {"clients": CLIENTS, "before_s": 2.0, "resumed_s": 1.0, "killed_s": 2.0}
    return {"clients": CLIENTS, "before_s": 4.0, "resumed_s": 2.0, "killed_s": 4.0}


def reference_requests() -> list[Req]:
    return [Req(t, f, s) for t in SHORT[:2] for f in ("wav", "mp3") for s in (False, True)]


async def load(url: str, clients: int, stop: asyncio.Event) -> list[Outcome]:
    outcomes: list[Outcome] = []
    rng = random.Random(11)
    counter = iter(range(1_000_000))

    async def client_loop(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            if rng.random() < 0.6:
                req = rng.choice(reference_requests())
            else:
                req = Req(f"Ticket {next(counter)} is ready.", "wav", rng.random() < 0.5)
            outcomes.append(await send(client, req, timeout=30))

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
    return outcomes


async def one_cache(
    ctx: Context, cache: str, sizes: dict[str, Any], refs: References
) -> dict[str, Any]:
    redis = redis_server_class()()
    await asyncio.to_thread(redis.start)
    try:
        env = ctx.env(VOXSERVE_CACHE=cache, VOXSERVE_CACHE_URL=redis.url)
        async with serve(env) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                await refs.prepare(client, reference_requests())
            stop = asyncio.Event()
            running = asyncio.create_task(load(server.url, sizes["clients"], stop))
            events = {"start": time.monotonic()}
            await asyncio.sleep(sizes["before_s"])
            redis.pause()
            events["paused"] = time.monotonic()
            await asyncio.sleep(PAUSE_S)
            redis.resume()
            events["resumed"] = time.monotonic()
            await asyncio.sleep(sizes["resumed_s"])
            await asyncio.to_thread(redis.kill)
            events["killed"] = time.monotonic()
            await asyncio.sleep(sizes["killed_s"])
            stop.set()
            outcomes = await running
            cache_errors = await server.metric("voxserve_cache_errors_total")
            log_tail = server.log_tail()
    finally:
        await asyncio.to_thread(redis.stop)
    phases: dict[str, list[float]] = {
        name: [] for name in ("before", "paused", "resumed", "killed")
    }
    for o in outcomes:
        phase = "before"
        for name in ("paused", "resumed", "killed"):
            if o.started >= events[name]:
                phase = name
        if o.latency is not None:
            phases[phase].append(o.latency)
    return tally(outcomes, refs) | {
        "latency_s_by_phase": {name: pcts(values) for name, values in phases.items()},
        "cache_errors": cache_errors,
        "server_log_tail": log_tail,
    }


async def run(ctx: Context) -> Result:
    result = Result(NAME, ctx)
    sizes = scale(ctx.quick)
    result.config = sizes | {"pause_s": PAUSE_S, "caches": list(CACHES), "server_env": ctx.env()}
    refs = ctx.references
    for cache in CACHES:
        figures = await one_cache(ctx, cache, sizes, refs)
        ok = result.none_of(f"errors_{cache}", figures["problems"], "answers other than 200")
        all_200 = figures["statuses"].get("200", 0) == figures["requests"] > 0
        result.check(f"all_200_{cache}", all_200, figures["statuses"], "every answer 200")
        if ok and all_200:
            del figures["server_log_tail"]
        result.figures[cache] = figures
    return result
