"""Stalled uploads: 64 connections send headers and half a body, then go quiet.

Each raw TCP connection (asyncio.open_connection) sends ``POST /v1/audio/speech`` with
``Content-Length: 1000`` and 500 bytes of it, then nothing. While they stay open, a real
client asks for a short sentence (whole, then streamed) three times. Afterwards each
stalled connection is read until 3 s past the server's body timeout
(VOXSERVE_BODY_TIMEOUT_SECONDS, 10 s unless set; at most 15 s) to see what the server
answers a body that never arrives: 408, or nothing without a body timeout.

Checks: every real request gets 200 (the same audio as alone) within 2 s; every stalled
connection gets 408 or is closed within the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import httpx

from reliability.harness import SHORT, Context, Result, serve
from reliability.traffic import Outcome, References, Req, send, tally

NAME = "stalled_uploads"
STALLED = 64
DECLARED_BYTES = 1000
REAL_WITHIN_S = 2.0
PROBES = 3
#: The server's body timeout when VOXSERVE_BODY_TIMEOUT_SECONDS is not set.
DEFAULT_BODY_TIMEOUT_S = 10.0
MAX_ANSWER_WAIT_S = 15.0


def scale(env: dict[str, str]) -> dict[str, Any]:
    """Sizes (the same with --quick: waiting costs no CPU); the stalled connections are
    watched until 3 s past the server's body timeout, at most 15 s."""
    body_timeout = float(env.get("VOXSERVE_BODY_TIMEOUT_SECONDS", DEFAULT_BODY_TIMEOUT_S))
    return {
        "stalled": STALLED,
        "probes": PROBES,
        "body_timeout_s": body_timeout,
        "answer_wait_s": min(body_timeout + 3.0, MAX_ANSWER_WAIT_S),
    }


async def stall(
    host: str, port: int, path: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that has sent its headers and half its declared body."""
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {DECLARED_BYTES}\r\n\r\n"
    )
    half = b'{"input": "' + b"a" * (DECLARED_BYTES // 2 - 11)
    writer.write(head.encode() + half)
    await writer.drain()
    return reader, writer


async def answer(reader: asyncio.StreamReader, deadline: float) -> tuple[str, float | None]:
    """The status a stalled connection got ('closed' or 'nothing') and when."""
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            line = await reader.readline()
    except TimeoutError:
        return "nothing", None
    except OSError:
        return "reset", time.monotonic()
    if not line:
        return "closed", time.monotonic()
    parts = line.decode("latin-1").split()
    return (parts[1] if len(parts) > 1 else "garbage"), time.monotonic()


async def run(ctx: Context) -> Result:
    result = Result(NAME, ctx)
    env = ctx.env()
    sizes = scale(env)
    result.config = sizes | {"declared_bytes": DECLARED_BYTES, "server_env": env}
    refs = ctx.references
    reqs = [Req(SHORT[0], "wav"), Req(SHORT[0], "wav", stream=True)]
    async with serve(env) as server:
        url = urlsplit(server.url)
        assert url.hostname is not None
        assert url.port is not None
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            await refs.prepare(client, reqs)
            stalled_at = time.monotonic()
            conns = await asyncio.gather(
                *(
                    stall(url.hostname, url.port, "/v1/audio/speech")
                    for _ in range(sizes["stalled"])
                )
            )
            await asyncio.sleep(0.5)  # the server has read every head by now
            outcomes = []
            for n in range(sizes["probes"]):
                for req in reqs:
                    outcomes.append(await send(client, req, timeout=10))
                if n + 1 < sizes["probes"]:
                    await asyncio.sleep(0.5)
        deadline = stalled_at + sizes["answer_wait_s"]
        answers = await asyncio.gather(*(answer(reader, deadline) for reader, _ in conns))
        for _, writer in conns:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        judge(
            result,
            outcomes=outcomes,
            refs=refs,
            answers=answers,
            stalled_at=stalled_at,
            wait_s=sizes["answer_wait_s"],
        )
        if not result.passed:
            result.figures["server_log_tail"] = server.log_tail()
    return result


def judge(
    result: Result,
    *,
    outcomes: list[Outcome],
    refs: References,
    answers: list[tuple[str, float | None]],
    stalled_at: float,
    wait_s: float,
) -> None:
    counts = Counter(status for status, _ in answers)
    answered = [at - stalled_at for _, at in answers if at is not None]
    real = tally(outcomes, refs)
    result.figures = {
        "real_requests": real,
        "real_latency_s": [None if o.latency is None else round(o.latency, 3) for o in outcomes],
        "stalled_got": dict(counts),
        "stalled_answered_after_s": {
            "min": round(min(answered), 2) if answered else None,
            "max": round(max(answered), 2) if answered else None,
        },
    }
    slow_or_bad = [
        o for o in outcomes if o.status != 200 or o.latency is None or o.latency > REAL_WITHIN_S
    ]
    result.check(
        "real_request_200_within_2s",
        not slow_or_bad and not real["problems"],
        f"{len(outcomes) - len(slow_or_bad)}/{len(outcomes)}",
        f"all 200 within {REAL_WITHIN_S:g} s",
        "; ".join(f"{o.req.label}: {o.status or o.error} in {o.latency}" for o in slow_or_bad),
    )
    refused = counts.get("408", 0) + counts.get("closed", 0) + counts.get("reset", 0)
    result.check(
        "stalled_get_408",
        refused == len(answers),
        dict(counts),
        f"408 or closed within {wait_s:g} s",
    )
