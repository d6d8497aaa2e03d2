"""The requests the suite sends, how a response is read and judged, and mixed-audio checks.

Every ``/v1/audio/speech`` request asks for ``noise_scale: 0, noise_w: 0``, which makes
the audio a function of the request alone: made alone, the same request gives the same
bytes on any server in every format (Opus up to the Ogg stream serial number and the page
checksums that cover it). :class:`References` keeps one
body per request, made alone before any load; every 200 under load must be the same audio
(reliability.audio.compare: bytes, else decoded samples, because batching under load
changes the model output by float rounding). ``/api/tts`` and ``/process`` take no noise
parameters, so their audio is random and only their status is judged.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from reliability.audio import compare

SPEECH = "/v1/audio/speech"
COQUI = "/api/tts"
MARY = "/process"

#: The formats of the overload mix; ALL_FORMATS is every format the server offers.
FORMATS = ("wav", "mp3", "opus", "flac", "pcm")
ALL_FORMATS = (*FORMATS, "aac")

#: Bytes before the first audio sample of a streamed WAV (its header).
WAV_HEADER = 44


@dataclass(frozen=True)
class Req:
    """One request the suite sends."""

    text: str
    """What to speak."""
    format: str = "wav"
    """response_format (``/api/tts`` and ``/process`` always answer WAV)."""
    stream: bool = False
    """Streamed (chunked, sentence by sentence) or one whole file."""
    path: str = SPEECH
    """``/v1/audio/speech``, ``/api/tts`` (JSON ``text``) or ``/process`` (form)."""
    bypass: bool = False
    """Send ``Cache-Control: no-cache`` (synthesize even when cached)."""

    @property
    def deterministic(self) -> bool:
        return self.path == SPEECH

    @property
    def key(self) -> tuple[str, str, str, bool]:
        return (self.path, self.text, self.format, self.stream)

    @property
    def label(self) -> str:
        shape = "stream" if self.stream else "whole"
        return f"{self.path} {self.format} {shape}" if self.path == SPEECH else self.path

    def kwargs(self) -> dict[str, Any]:
        """httpx keyword arguments for the body and headers."""
        headers = {"Cache-Control": "no-cache"} if self.bypass else {}
        if self.path == COQUI:
            return {"json": {"text": self.text}, "headers": headers}
        if self.path == MARY:
            return {"data": {"INPUT_TEXT": self.text, "LOCALE": "en_US"}, "headers": headers}
        body = {
            "input": self.text,
            "response_format": self.format,
            "stream": self.stream,
            "noise_scale": 0,
            "noise_w": 0,
        }
        return {"json": body, "headers": headers}


@dataclass(frozen=True)
class Outcome:
    """What one request got."""

    req: Req
    started: float
    """time.monotonic() when it was sent."""
    status: int | None
    """HTTP status; None when no status line came."""
    latency: float | None
    """Seconds to the last byte (None if it did not complete)."""
    ttfa: float | None
    """Seconds to the first audio byte (past a WAV header)."""
    body: bytes
    retry_after: str | None
    content_type: str
    error: str | None
    """Transport error or timeout, in words."""
    hung_up: bool
    """The client hung up on purpose before the end."""
    finished: float
    """time.monotonic() when the client was done (answer read, hung up or gave up)."""

    def json_error(self) -> dict[str, Any] | None:
        """The OpenAI-shaped ``error`` object of the body, or None if it has none."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        error = data.get("error") if isinstance(data, dict) else None
        return error if isinstance(error, dict) and error.get("message") else None


async def send(
    client: httpx.AsyncClient,
    req: Req,
    *,
    timeout: float,
    hang_up_after: float | None = None,
    hang_up_at_first_audio: bool = False,
) -> Outcome:
    """Send ``req`` and read the answer as it arrives; never raises for HTTP trouble.

    ``hang_up_after`` seconds or at the first audio byte, the client closes the connection
    (an abandoned request); past ``timeout`` it gives up and records an error.
    """
    started = time.monotonic()
    status: int | None = None
    retry_after: str | None = None
    content_type = ""
    chunks: list[bytes] = []
    ttfa: float | None = None
    latency: float | None = None
    error: str | None = None
    hung_up = False
    limit = timeout if hang_up_after is None else min(timeout, hang_up_after)
    try:
        async with asyncio.timeout(limit):
            async with client.stream("POST", req.path, **req.kwargs()) as response:
                status = response.status_code
                retry_after = response.headers.get("retry-after")
                content_type = response.headers.get("content-type", "")
                header = WAV_HEADER if status == 200 and req.format == "wav" else 0
                size = 0
                async for data in response.aiter_raw():
                    chunks.append(data)
                    size += len(data)
                    if ttfa is None and size > header:
                        ttfa = time.monotonic() - started
                        if hang_up_at_first_audio:
                            hung_up = True
                            break
            if not hung_up:
                latency = time.monotonic() - started
    except TimeoutError:
        if hang_up_after is not None and hang_up_after <= timeout:
            hung_up = True
        else:
            error = f"no complete answer within {timeout:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:200]
    return Outcome(
        req, started, status, latency, ttfa, b"".join(chunks), retry_after, content_type,
        error, hung_up, time.monotonic(),
    )  # fmt: skip


class References:
    """One body per deterministic request, made alone; what every later 200 must equal."""

    def __init__(self) -> None:
        self.bodies: dict[tuple[str, str, str, bool], bytes] = {}
        self.latency: dict[tuple[str, str, str, bool], float] = {}

    async def prepare(self, client: httpx.AsyncClient, reqs: list[Req]) -> float:
        """Make the missing references one at a time; returns the seconds it took."""
        started = time.monotonic()
        for req in dict.fromkeys(r for r in reqs if r.deterministic):
            if req.key in self.bodies:
                continue
            alone = Req(req.text, req.format, req.stream, req.path, bypass=True)
            outcome = await send(client, alone, timeout=120)
            if outcome.status != 200 or outcome.latency is None:
                raise RuntimeError(
                    f"the reference request {req.label} ({req.text[:40]!r}) got "
                    f"{outcome.status or outcome.error}: {outcome.body[:200]!r}"
                )
            self.bodies[req.key] = outcome.body
            self.latency[req.key] = outcome.latency
        return time.monotonic() - started

    def verdict(self, outcome: Outcome) -> str | None:
        """None when the body is its reference's audio (or a prefix of it, for a client that
        hung up), or when there is no reference; otherwise ``mixed audio`` or ``cut stream``."""
        reference = self.bodies.get(outcome.req.key)
        if reference is None:
            return None
        fmt = outcome.req.format
        found = compare(fmt, outcome.body, reference)
        if found == "same" or (found == "prefix" and outcome.hung_up):
            return None
        if found == "undecodable":
            return None if outcome.hung_up else "undecodable audio"
        return "cut stream" if found == "prefix" else "mixed audio"


def judge(outcome: Outcome, refs: References) -> str | None:
    """What is wrong with ``outcome``, in a few words, or None when it is acceptable.

    Acceptable: a 200 with its reference's audio, a 503 with ``Retry-After`` and a JSON
    error, or a deliberate hang-up.
    """
    if outcome.error is not None:
        if outcome.error.startswith("no complete"):
            return "no complete answer in time"
        return "cut after its 200" if outcome.status == 200 else "transport error"
    if outcome.status == 200:
        return refs.verdict(outcome)
    if outcome.hung_up and outcome.status is None:
        return None
    if outcome.status == 503:
        if outcome.json_error() is None:
            return "503 without a JSON error"
        return None if outcome.retry_after else "503 without Retry-After"
    return f"status {outcome.status}"


def tally(outcomes: list[Outcome], refs: References) -> dict[str, Any]:
    """Status counts, and problems by kind with a few samples each."""
    statuses = Counter(
        str(o.status) if o.status is not None else ("hung up" if o.hung_up else "no status")
        for o in outcomes
    )
    problems: dict[str, list[str]] = {}
    counts: Counter[str] = Counter()
    for o in outcomes:
        kind = judge(o, refs)
        if kind is None:
            continue
        counts[kind] += 1
        samples = problems.setdefault(kind, [])
        if len(samples) < 3:
            samples.append(f"{o.req.label}: {o.error or o.body[:120]!r}")
    return {
        "requests": len(outcomes),
        "statuses": dict(sorted(statuses.items())),
        "problems": dict(counts),
        "problem_samples": problems,
    }
