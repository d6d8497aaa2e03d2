"""SIGTERM under load: what every request in flight gets, and how long the process takes.

Eight closed-loop clients ask for paragraphs, streamed and whole, in wav and mp3. After a
few seconds the server gets SIGTERM and the clients start nothing new; the requests in
flight run to their end. The drain limit is voxserve.server.run.DRAIN_SECONDS plus
VOXSERVE_DRAIN_DELAY_SECONDS (the time readiness says 503 before the listener closes).

Checks: each request in flight at the signal got its complete audio (a 200 equal to the
request alone) or a 503 with a JSON error and Retry-After; a stream cut without its end
fails. The process exits within the drain limit.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from typing import Any

import httpx

from reliability.harness import PARAGRAPHS, Context, Result, serve
from reliability.traffic import Outcome, Req, send, tally

NAME = "sigterm"
CLIENTS = 8
#: Waiting for the exit past the drain limit before the process is killed.
EXIT_SLACK_S = 10.0


def scale(quick: bool) -> dict[str, Any]:
    return {"clients": CLIENTS, "load_s": 3.0 if quick else 6.0}


def reference_requests() -> list[Req]:
    texts = (PARAGRAPHS[0], PARAGRAPHS[2])
    return [Req(t, f, s) for t in texts for f in ("wav", "mp3") for s in (False, True)]


def drain_limit(env: dict[str, str]) -> float:
    from voxserve.server.run import DRAIN_SECONDS

    return DRAIN_SECONDS + float(env.get("VOXSERVE_DRAIN_DELAY_SECONDS", 0))


async def load(url: str, clients: int, stop: asyncio.Event) -> list[Outcome]:
    outcomes: list[Outcome] = []
    rng = random.Random(5)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            outcomes.append(await send(client, rng.choice(reference_requests()), timeout=90))

    async with httpx.AsyncClient(base_url=url, timeout=90) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
    return outcomes


async def run(ctx: Context) -> Result:
    result = Result(NAME, ctx)
    sizes = scale(ctx.quick)
    env = ctx.env()
    limit = drain_limit(env)
    result.config = sizes | {"drain_limit_s": limit, "server_env": env}
    refs = ctx.references
    async with serve(env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            await refs.prepare(client, reference_requests())
        stop = asyncio.Event()
        running = asyncio.create_task(load(server.url, sizes["clients"], stop))
        await asyncio.sleep(sizes["load_s"])
        process = server.live.process
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stop.set()
        try:
            code: int | None = await asyncio.to_thread(process.wait, limit + EXIT_SLACK_S)
            exit_s: float | None = time.monotonic() - signalled
        except subprocess.TimeoutExpired:
            code, exit_s = None, None
        outcomes = await running
        log_tail = server.log_tail()
    in_flight = [o for o in outcomes if o.started < signalled < o.finished]
    before = [o for o in outcomes if o.finished <= signalled]
    caught = tally(in_flight, refs)
    result.figures = {
        "in_flight_at_signal": caught,
        "in_flight_got": _shapes(in_flight),
        "finished_before_signal": tally(before, refs),
        "exit_after_s": None if exit_s is None else round(exit_s, 2),
        "exit_code": code,
    }
    result.none_of("in_flight_clean", caught["problems"], "cut or unclean answers")
    result.check("caught_some", len(in_flight) > 0, len(in_flight), "> 0 requests in flight")
    result.at_most("exit_within_drain_s", exit_s, limit)
    if not result.passed:
        result.figures["server_log_tail"] = log_tail
    return result


def _shapes(outcomes: list[Outcome]) -> dict[str, int]:
    """How many in-flight requests of each shape ended how."""
    counts: dict[str, int] = {}
    for o in outcomes:
        end = str(o.status) if o.error is None else f"{o.status} then {o.error.split(':')[0]}"
        key = f"{'stream' if o.req.stream else 'whole'} {end}"
        counts[key] = counts.get(key, 0) + 1
    return counts
