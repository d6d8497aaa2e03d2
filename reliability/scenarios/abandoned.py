"""Abandoned requests: clients that hang up mid-way, for every response shape.

For each shape, on a fresh server: 200 streamed ``/v1/audio/speech`` requests (hung up at
their first audio, or after 5 s without any), then 50 whole ones of each of
``/v1/audio/speech`` with ``stream: false``, ``/api/tts`` and ``/process`` (hung up after
0.5 s), all started at once with a text of eight sentences. From the last hang-up the
suite measures how long until the server's ``voxserve_requests_in_flight`` gauge is 0
and until its process uses under 10 % of a core over a 0.5 s window.

Checks, per shape: both within 2 s of the last hang-up; nothing but 200 (hung up), 503
with Retry-After, and streamed audio that is the start of the same request made alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from reliability.harness import PARAGRAPHS, Context, Result, cpu_idle, serve, wait_until
from reliability.traffic import COQUI, MARY, Outcome, References, Req, send, tally

NAME = "abandoned"
TEXT = f"{PARAGRAPHS[1]} {PARAGRAPHS[3]}"
WITHIN_S = 2.0
IDLE_PERCENT = 10.0
WHOLE_HANG_UP_S = 0.5
STREAM_GIVE_UP_S = 5.0

#: shape -> (request, how many in the full run, how many with --quick)
SHAPES: dict[str, tuple[Req, int, int]] = {
    "stream": (Req(TEXT, "wav", stream=True), 200, 20),
    "whole": (Req(TEXT, "wav"), 50, 10),
    "api_tts": (Req(TEXT, path=COQUI), 50, 10),
    "process": (Req(TEXT, path=MARY), 50, 10),
}


def scale(quick: bool) -> dict[str, Any]:
    return {
        "requests": {shape: n_quick if quick else n for shape, (_, n, n_quick) in SHAPES.items()},
        "measure_for_s": 6.0 if quick else 10.0,
    }


async def abandon(client: httpx.AsyncClient, req: Req) -> Outcome:
    if req.stream:
        return await send(
            client, req, timeout=60, hang_up_after=STREAM_GIVE_UP_S, hang_up_at_first_audio=True
        )
    return await send(client, req, timeout=60, hang_up_after=WHOLE_HANG_UP_S)


async def shape_run(
    ctx: Context, shape: str, count: int, measure_for: float, refs: References
) -> dict[str, Any]:
    req = SHAPES[shape][0]
    async with serve(ctx.env()) as server:
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
            await refs.prepare(client, [req])
            outcomes = await asyncio.gather(*(abandon(client, req) for _ in range(count)))
        last = max(o.finished for o in outcomes)

        async def idle_gauge() -> bool:
            return await server.in_flight() == 0

        in_flight_s, idle_s = await asyncio.gather(
            wait_until(idle_gauge, since=last, timeout=measure_for),
            cpu_idle(server.process, since=last, timeout=measure_for, threshold=IDLE_PERCENT),
        )
        return tally(outcomes, refs) | {
            "hung_up": sum(o.hung_up for o in outcomes),
            "hang_ups_spread_s": round(last - min(o.started for o in outcomes), 2),
            "in_flight_zero_after_s": None if in_flight_s is None else round(in_flight_s, 2),
            "cpu_idle_after_s": None if idle_s is None else round(idle_s, 2),
            "in_flight_at_end": await server.in_flight(),
            "server_cpu_s": round(sum(server.process.cpu_times()[:2]), 1),
        }


async def run(ctx: Context) -> Result:
    result = Result(NAME, ctx)
    sizes = scale(ctx.quick)
    result.config = sizes | {
        "text_chars": len(TEXT),
        "whole_hang_up_s": WHOLE_HANG_UP_S,
        "stream_hang_up": f"at the first audio byte, or after {STREAM_GIVE_UP_S:g} s",
        "server_env": ctx.env(),
    }
    refs = ctx.references
    for shape, count in sizes["requests"].items():
        figures = await shape_run(ctx, shape, count, sizes["measure_for_s"], refs)
        result.figures[shape] = figures
        result.none_of(f"errors_{shape}", figures["problems"], "answers other than 200/503")
        result.at_most(f"in_flight_zero_{shape}_s", figures["in_flight_zero_after_s"], WITHIN_S)
        result.at_most(f"cpu_idle_{shape}_s", figures["cpu_idle_after_s"], WITHIN_S)
    return result
