"""Worst-case inputs, one at a time: what a text becomes when spoken, and how big it gets.

Three texts of at most 4,096 characters (the default VOXSERVE_MAX_INPUT_CHARS):
``1234567 `` repeated (digits expand five to nine times when spoken), thirteen numbers of
300 digits, and plain prose. The two digit texts go in every format, whole and streamed;
the prose streamed in every format and whole as WAV (every whole format holds the same
PCM before encoding, and one whole 4,096-character synthesis takes ~30 s on 2 cores).
A stream is read for a few seconds and then hung up (its audio flowing is enough); a
whole request is given a time limit. The server's RSS is sampled every 0.1 s; the growth
of a request is its peak minus the RSS before it. A request still running at its limit
restarts the server, so that its leftover work does not weigh on the next one.

Checks: each answer is a 200 or a 413 whose JSON error names a limit; each came within
its limit; no request grew RSS by more than 160 MB; every case ran within the budget.

The bound: the first request with sentences of the longest kind (400 characters) grows
onnxruntime's memory arenas once, for the exclusive session and the lanes' session
(measured 147 MB on 2 lanes; the vocoder runs in windows, so it no longer grows with the
sentence); later requests add a few MB (measured at most 25 MB). The issue suggested
100 MB; that would need shorter sentences or arenas that shrink after every run (10 %
slower, measured).
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from typing import Any

import httpx

from reliability.harness import LONG_ARTICLE, Context, Result, Sampler, Server, serve
from reliability.traffic import ALL_FORMATS, Outcome, Req, send

NAME = "worst_case"
MAX_CHARS = 4096
RSS_GROWTH_MB = 160.0


def _fill(unit: str) -> str:
    return (unit * (MAX_CHARS // len(unit) + 1))[:MAX_CHARS].strip()


TEXTS = {
    "digits_4096": _fill("1234567 "),
    "numbers_300_digits": " ".join(("1234567890" * 30)[i:] + "1234567890"[:i] for i in range(13)),
    "plain_4096": _fill(LONG_ARTICLE + " ").rsplit(" ", 1)[0],
}


def scale(quick: bool) -> dict[str, Any]:
    if quick:
        return {"formats": ["wav", "mp3"], "whole_limit_s": 6.0, "prose_whole_limit_s": 20.0,
                "stream_read_s": 2.0, "budget_s": 45.0}  # fmt: skip
    return {"formats": list(ALL_FORMATS), "whole_limit_s": 15.0, "prose_whole_limit_s": 40.0,
            "stream_read_s": 4.0, "budget_s": 80.0}  # fmt: skip


def cases(formats: list[str]) -> list[tuple[str, Req]]:
    """(text name, request), the cheap refusals first so a tight budget still sees them."""
    out = []
    for fmt in formats:
        for stream in (False, True):
            for name in ("digits_4096", "numbers_300_digits"):
                out.append((name, Req(TEXTS[name], fmt, stream)))
        out.append(("plain_4096", Req(TEXTS["plain_4096"], fmt, stream=True)))
    out.append(("plain_4096", Req(TEXTS["plain_4096"], "wav")))
    return out


def names_a_limit(outcome: Outcome) -> bool:
    error = outcome.json_error()
    return error is not None and "limit" in str(error.get("message", "")).lower()


def verdict(outcome: Outcome) -> str | None:
    """What is wrong with the answer, or None."""
    if outcome.status == 200 and (outcome.latency is not None or outcome.hung_up):
        return None
    if outcome.status == 413:
        return None if names_a_limit(outcome) else "413 without a JSON error naming a limit"
    if outcome.error is not None and outcome.error.startswith("no complete"):
        return "no answer within its limit"
    if outcome.error is not None:
        return outcome.error
    return f"status {outcome.status}: {outcome.body[:150]!r}"


async def one(server: Server, req: Req, sizes: dict[str, Any], prose: bool) -> dict[str, Any]:
    before = server.rss()
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=120) as client,
        Sampler(server.rss, every=0.1) as rss,
    ):
        if req.stream:
            outcome = await send(client, req, timeout=120, hang_up_after=sizes["stream_read_s"])
        else:
            limit = sizes["prose_whole_limit_s"] if prose else sizes["whole_limit_s"]
            outcome = await send(client, req, timeout=limit)
    return {
        "status": outcome.status,
        "seconds": round(outcome.latency or outcome.finished - outcome.started, 2),
        "hung_up": outcome.hung_up,
        "body_bytes": len(outcome.body),
        "rss_growth_mb": round((rss.peak - before) / 2**20, 1),
        "rss_kept_mb": round((server.rss() - before) / 2**20, 1),
        "problem": verdict(outcome),
        "error": outcome.json_error(),
    }


async def run(ctx: Context) -> Result:
    result = Result(NAME, ctx)
    sizes = scale(ctx.quick)
    todo = cases(sizes["formats"])
    result.config = sizes | {
        "text_chars": {name: len(text) for name, text in TEXTS.items()},
        "server_env": ctx.env(),
    }
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + sizes["budget_s"]
    restarts = 0
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(serve(ctx.env()))
        for name, req in todo:
            if time.monotonic() > deadline:
                break
            row = {"text": name, "format": req.format, "stream": req.stream}
            row |= await one(server, req, sizes, prose=name == "plain_4096")
            rows.append(row)
            if row["problem"] == "no answer within its limit":  # its work may still run
                await stack.aclose()
                server = await stack.enter_async_context(serve(ctx.env()))
                restarts += 1
    result.figures = {"cases": rows, "restarts": restarts, "not_run": len(todo) - len(rows)}
    worst = max(rows, key=lambda r: r["rss_growth_mb"], default=None)
    growth = None if worst is None else worst["rss_growth_mb"]
    result.figures["max_rss_growth_mb"] = growth
    problems = [f"{r['text']} {r['format']} {'stream' if r['stream'] else 'whole'}: {r['problem']}"
                for r in rows if r["problem"]]  # fmt: skip
    result.check("answers_200_or_413", not problems, len(problems), "0 other answers",
                 "; ".join(problems)[:600])  # fmt: skip
    worst_case = (
        ""
        if worst is None
        else f"{worst['text']} {worst['format']} " + ("stream" if worst["stream"] else "whole")
    )
    result.at_most("rss_growth_per_request_mb", growth, RSS_GROWTH_MB, "MB", worst_case)
    result.check("all_cases_ran", len(rows) == len(todo), f"{len(rows)}/{len(todo)}",
                 f"all within {sizes['budget_s']:g} s")  # fmt: skip
    return result
