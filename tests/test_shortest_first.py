"""The order of whole responses under sustained load (voxserve.deadlines.first_due): short
ones overtake a long one, for at most VOXSERVE_SCHEDULE_MAX_OVERTAKE_SECONDS."""

from __future__ import annotations

import asyncio
import time

import pytest

from fake_server import fake_settings, fake_synthesizer
from fakes import FakeEngine
from voxserve.types import SynthesisRequest

pytestmark = pytest.mark.inprocess

LONG = " ".join(f"Sentence number {n} of a long answer read in one piece." for n in range(20))
CLIENTS = 4
SHORTS = 20
"""Short replies per client: with four clients one is always queued."""


def test_short_requests_overtake_a_long_one_which_is_still_served_within_its_bound() -> None:
    engine = FakeEngine(batching=False, seconds_per_call=0.02)
    settings = fake_settings(schedule_stretch=4, schedule_max_overtake_seconds=0.3)
    synth = fake_synthesizer(engine, settings)
    finished: list[tuple[str, float]] = []

    async def whole(text: str, name: str) -> None:
        plan = synth.plan(SynthesisRequest(text, voice=engine.voice.id))
        async for _ in synth.astream(plan, whole=True):
            pass
        finished.append((name, time.monotonic()))

    async def client_of_short_replies(c: int) -> None:
        for n in range(SHORTS):  # back to back: the next as soon as one is answered
            await whole(f"Yes {c} {n}.", "short")

    async def scenario() -> None:
        long = asyncio.ensure_future(whole(LONG, "long"))
        while not engine.batches:  # the long one has started
            await asyncio.sleep(0.005)
        await asyncio.gather(long, *(client_of_short_replies(c) for c in range(CLIENTS)))
        await synth.aclose()

    asyncio.run(scenario())
    order = [name for name, _ in finished]
    done = order.index("long")
    # Short replies went first while the long one waited within its bound ...
    assert done >= 3, order
    # ... and then it was served, though short ones were always queued: those that arrived
    # once it was due waited for it.
    assert done < len(order) - CLIENTS * 2, order
