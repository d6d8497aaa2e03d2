"""Warming the lanes' sessions goes through the scheduler, behind every request."""

from __future__ import annotations

import asyncio

import pytest

from fake_server import fake_settings, fake_synthesizer
from fakes import FakeEngine
from voxserve.types import SynthesisRequest

pytestmark = pytest.mark.inprocess

WARM = "Warming up the lanes."


def test_warming_the_lanes_is_one_lane_run_queued_behind_the_requests() -> None:
    engine = FakeEngine(lanes=2, batching=False, seconds_per_call=0.02)
    synth = fake_synthesizer(engine, fake_settings(lanes=2))
    sentences = [f"Sentence {n} of a request that came first." for n in range(6)]

    async def scenario() -> None:
        plan = synth.plan(SynthesisRequest(" ".join(sentences), voice=engine.voice.id))
        request = asyncio.ensure_future(synth.asynthesize(plan))
        while not engine.batches:  # the request is running and its other sentences queued
            await asyncio.sleep(0.005)
        await synth.awarm_lanes([engine], WARM)
        await request
        await synth.aclose()

    asyncio.run(scenario())
    assert engine.batches.index([WARM]) > 0
    assert engine.exclusive[engine.batches.index([WARM])] is False  # the lanes' own sessions
    assert len(engine.batches) == len(sentences) + 1
