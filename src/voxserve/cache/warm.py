"""Precomputing phrases (IVR prompts, UI strings) into a shared cache."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from voxserve.audio import StreamEncoder
from voxserve.cache import AnyCache
from voxserve.errors import InvalidRequest
from voxserve.synthesizer import Synthesizer
from voxserve.types import SynthesisParams, SynthesisRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmReport:
    phrases: int
    """Phrases synthesized and stored."""
    skipped: int
    """Phrases refused (empty, too long, ...), each logged."""
    stored_bytes: int
    """Bytes written to the cache."""
    failed: int = 0
    """Entries the cache refused (unreachable, or larger than the entry limit)."""


async def warm(
    synth: Synthesizer,
    cache: AnyCache,
    phrases: Iterable[str],
    *,
    voice: str | None,
    fmt: str,
    params: SynthesisParams | None = None,
) -> WarmReport:
    """Synthesize each phrase once and store it both as a whole file and as a stream.

    The server keys streamed and whole responses apart (their containers differ), so
    both are stored: a later request hits the cache whichever way it asks.
    """
    done = skipped = stored = failed = 0
    for phrase in phrases:
        request = SynthesisRequest(
            phrase, voice=voice, format=fmt, params=params or SynthesisParams()
        )
        try:
            plan = synth.plan(request)
        except InvalidRequest as exc:
            log.warning("skipping phrase %r: %s", phrase[:40], exc.message)
            skipped += 1
            continue
        chunks = list(synth.stream_plan(plan))
        whole = synth.encode_chunks(plan, chunks).data
        with StreamEncoder(plan.format, plan.output_rate) as encoder:
            streamed = b"".join([*(encoder.feed(c.samples) for c in chunks), encoder.finish()])
        for data, is_streamed in ((whole, False), (streamed, True)):
            if await cache.set(plan.cache_key(streamed=is_streamed), data):
                stored += len(data)
            else:
                failed += 1
        done += 1
    return WarmReport(phrases=done, skipped=skipped, stored_bytes=stored, failed=failed)
