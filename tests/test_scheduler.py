"""Tests for voxserve.scheduler with the deterministic FakeEngine (tests/fakes.py).

Each test drives the scheduler inside its own ``asyncio.run`` (pytest-asyncio is not
installed). Items submitted without an ``await`` in between are all queued before the
worker task first runs, which makes batch composition deterministic where a test needs it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakes import FakeEngine
from voxserve.engines.base import Engine
from voxserve.errors import EngineError, Overloaded
from voxserve.scheduler import Scheduler
from voxserve.types import FloatArray, SynthesisParams, Utterance

T = TypeVar("T")
PARAMS = SynthesisParams()


def utterances(*texts: str) -> list[Utterance]:
    return [Utterance(text=t, ids=tuple(ord(c) for c in t), params=PARAMS) for t in texts]


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-infer")
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


def run_with(
    engine: FakeEngine,
    executor: ThreadPoolExecutor,
    body: Callable[[Scheduler], Awaitable[T]],
    **options: float,
) -> T:
    """Run ``body(scheduler)`` in a fresh event loop, stopping the scheduler afterwards."""

    async def main() -> T:
        sched = Scheduler(engine, executor, **options)
        try:
            return await asyncio.wait_for(body(sched), timeout=30)
        finally:
            await sched.stop()

    return asyncio.run(main())


def assert_audio_of(results: list[FloatArray], engine: FakeEngine, texts: list[str]) -> None:
    assert len(results) == len(texts)
    for result, text in zip(results, texts, strict=True):
        assert np.array_equal(result, engine.render(text)), f"wrong audio for {text!r}"


def test_the_fake_engine_implements_the_engine_protocol() -> None:
    assert isinstance(FakeEngine(), Engine)


# -- the core invariant ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    shapes=st.lists(
        st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=5),
        min_size=1,
        max_size=6,
    ),
    batch_size=st.integers(min_value=1, max_value=8),
    max_wait_ms=st.sampled_from([0.0, 0.5, 2.0]),
    rng=st.randoms(use_true_random=False),
)
def test_every_item_gets_exactly_its_own_result_under_any_interleaving(
    shapes: list[list[int]], batch_size: int, max_wait_ms: float, rng: random.Random
) -> None:
    """Property: concurrent requests, each submitting its sentences one by one (like
    Synthesizer.astream, sometimes waiting for earlier sentences first), all get exactly
    one result per utterance, each the audio of that very utterance, in submission order;
    every utterance reaches the engine exactly once and no batch exceeds batch_size.

    ``shapes[r][s]`` is the number of utterances in sentence ``s`` of request ``r``.
    """
    engine = FakeEngine()
    texts = {
        r: [[f"r{r} s{s} u{u}" for u in range(n)] for s, n in enumerate(sentences)]
        for r, sentences in enumerate(shapes)
    }
    # Decide every yield point up front so the example is reproducible.
    pauses = {r: [rng.randint(0, 3) for _ in sentences] for r, sentences in enumerate(shapes)}
    waits = {r: [rng.random() < 0.4 for _ in sentences] for r, sentences in enumerate(shapes)}

    async def request(sched: Scheduler, r: int) -> list[list[FloatArray]]:
        pending: list[list[asyncio.Future[FloatArray]]] = []
        results: list[list[FloatArray]] = []
        for s, sentence in enumerate(texts[r]):
            for _ in range(pauses[r][s]):
                await asyncio.sleep(0)
            pending.append(sched.submit(utterances(*sentence), index=s))
            if waits[r][s]:
                while pending:
                    results.append([await f for f in pending.pop(0)])
        while pending:
            results.append([await f for f in pending.pop(0)])
        return results

    async def body(sched: Scheduler) -> list[list[list[FloatArray]]]:
        return await asyncio.gather(*(request(sched, r) for r in texts))

    with ThreadPoolExecutor(max_workers=1) as pool:
        outcome = run_with(engine, pool, body, batch_size=batch_size, max_wait_ms=max_wait_ms)

    for r, sentences in texts.items():
        assert len(outcome[r]) == len(sentences)
        for got, sentence in zip(outcome[r], sentences, strict=True):
            assert_audio_of(got, engine, sentence)
    everything = [t for sentences in texts.values() for sentence in sentences for t in sentence]
    assert sorted(engine.inferred()) == sorted(everything)
    assert max(len(batch) for batch in engine.batches) <= batch_size


# -- batching ----------------------------------------------------------------------------


def test_full_batches_flush_at_batch_size(executor: ThreadPoolExecutor) -> None:
    engine = FakeEngine()
    texts = [f"item {i}" for i in range(7)]

    async def body(sched: Scheduler) -> list[FloatArray]:
        futures = [f for t in texts for f in sched.submit(utterances(t), index=0)]
        return [await f for f in futures]

    results = run_with(engine, executor, body, batch_size=3, max_wait_ms=100.0)
    assert_audio_of(results, engine, texts)
    # 7 queued at once: two full batches go without waiting, the rest after max_wait.
    assert engine.batches == [texts[0:3], texts[3:6], texts[6:7]]


def test_a_partial_batch_is_flushed_after_max_wait(executor: ThreadPoolExecutor) -> None:
    """Two items never fill a batch of 8; they still run, together, once max_wait passes."""
    engine = FakeEngine()

    async def body(sched: Scheduler) -> list[FloatArray]:
        futures = sched.submit(utterances("one", "two"), index=0)
        return [await f for f in futures]

    results = run_with(engine, executor, body, batch_size=8, max_wait_ms=20.0)
    assert_audio_of(results, engine, ["one", "two"])
    assert engine.batches == [["one", "two"]]


def test_a_batch_groups_the_most_urgent_item_with_the_closest_lengths(
    executor: ThreadPoolExecutor,
) -> None:
    """Less padding: the head of the queue is batched with the items nearest its length
    from the next few batches, not simply with the next items in line."""
    engine = FakeEngine()
    texts = ["x" * 10, "y" * 50, "z" * 11, "w" * 49, "v" * 12, "u" * 48]

    async def body(sched: Scheduler) -> list[FloatArray]:
        futures = [f for t in texts for f in sched.submit(utterances(t), index=0)]
        return [await f for f in futures]

    results = run_with(engine, executor, body, batch_size=3, max_wait_ms=0.0)
    assert_audio_of(results, engine, texts)
    assert engine.batches == [["x" * 10, "z" * 11, "v" * 12], ["y" * 50, "w" * 49, "u" * 48]]


# -- priority ----------------------------------------------------------------------------


def test_a_first_sentence_runs_before_earlier_submitted_later_sentences(
    executor: ThreadPoolExecutor,
) -> None:
    """Request B's sentence 0, submitted after request A's sentences 1..5, is inferred first;
    A's sentences then follow in their own order."""
    engine = FakeEngine()

    async def body(sched: Scheduler) -> list[FloatArray]:
        futures = [f for s in range(1, 6) for f in sched.submit(utterances(f"A{s}"), index=s)]
        futures += sched.submit(utterances("B0"), index=0)
        return [await f for f in futures]

    results = run_with(engine, executor, body, batch_size=1, max_wait_ms=0.0)
    assert_audio_of(results, engine, ["A1", "A2", "A3", "A4", "A5", "B0"])
    assert engine.inferred() == ["B0", "A1", "A2", "A3", "A4", "A5"]


def test_equal_sentence_indexes_run_in_arrival_order(executor: ThreadPoolExecutor) -> None:
    engine = FakeEngine()

    async def body(sched: Scheduler) -> None:
        futures = [f for r in "CAB" for f in sched.submit(utterances(f"{r}1"), index=1)]
        await asyncio.gather(*futures)

    run_with(engine, executor, body, batch_size=1, max_wait_ms=0.0)
    assert engine.inferred() == ["C1", "A1", "B1"]


def test_concurrency_runs_that_many_batches_at_once() -> None:
    """With concurrency 2 and two executor threads, two single-item batches overlap."""
    active = 0
    peak = 0
    guard = threading.Lock()

    class SlowEngine(FakeEngine):
        def infer(self, batch: Sequence[Utterance]) -> list[FloatArray]:
            nonlocal active, peak
            with guard:
                active += 1
                peak = max(peak, active)
            time.sleep(0.05)
            with guard:
                active -= 1
            return super().infer(batch)

    engine = SlowEngine()
    with ThreadPoolExecutor(max_workers=2) as pool:

        async def body(sched: Scheduler) -> list[FloatArray]:
            futures = [f for i in range(6) for f in sched.submit(utterances(f"t{i}"), index=0)]
            return [await f for f in futures]

        results = run_with(engine, pool, body, batch_size=1, max_wait_ms=0.0, concurrency=2)
    assert_audio_of(results, engine, [f"t{i}" for i in range(6)])
    assert peak == 2


# -- cancellation --------------------------------------------------------------------------


def test_cancelled_items_never_reach_the_engine(executor: ThreadPoolExecutor) -> None:
    """A client that hangs up cancels its queued futures; the worker drops them unread."""
    engine = FakeEngine()

    async def body(sched: Scheduler) -> list[FloatArray]:
        kept = sched.submit(utterances("keep 1", "keep 2"), index=0)
        dropped = sched.submit(utterances("drop 1", "drop 2", "drop 3"), index=0)
        kept += sched.submit(utterances("keep 3"), index=1)
        for future in dropped:
            future.cancel()
        return [await f for f in kept]

    results = run_with(engine, executor, body, batch_size=2, max_wait_ms=0.0)
    assert_audio_of(results, engine, ["keep 1", "keep 2", "keep 3"])
    assert engine.inferred() == ["keep 1", "keep 2", "keep 3"]


def test_stop_cancels_what_is_still_queued(executor: ThreadPoolExecutor) -> None:
    engine = FakeEngine()

    async def body() -> list[asyncio.Future[FloatArray]]:
        sched = Scheduler(engine, executor, batch_size=1, max_wait_ms=0.0)
        futures = sched.submit(utterances("never 1", "never 2"), index=0)
        await sched.stop()  # before the worker ever ran
        return futures

    futures = asyncio.run(body())
    assert all(f.cancelled() for f in futures)
    assert engine.inferred() == []


# -- backpressure ----------------------------------------------------------------------------


def test_a_full_queue_raises_overloaded_at_once_and_queues_nothing(
    executor: ThreadPoolExecutor,
) -> None:
    engine = FakeEngine()

    async def body(sched: Scheduler) -> list[FloatArray]:
        futures = sched.submit(utterances("a", "b", "c"), index=0)
        with pytest.raises(Overloaded) as info:
            sched.submit(utterances("d", "e"), index=0)  # 3 + 2 > 4: refused whole
        assert info.value.retry_after > 0
        assert "full" in info.value.message
        assert sched.depth == 3
        futures += sched.submit(utterances("f"), index=0)  # 3 + 1 = 4 still fits
        return [await f for f in futures]

    results = run_with(engine, executor, body, batch_size=2, max_wait_ms=0.0, max_queue=4)
    assert_audio_of(results, engine, ["a", "b", "c", "f"])
    assert sorted(engine.inferred()) == ["a", "b", "c", "f"]


def test_the_queue_accepts_work_again_once_it_drains(executor: ThreadPoolExecutor) -> None:
    engine = FakeEngine()

    async def body(sched: Scheduler) -> list[FloatArray]:
        first = sched.submit(utterances("x", "y"), index=0)
        with pytest.raises(Overloaded):
            sched.submit(utterances("z"), index=0)
        await asyncio.gather(*first)
        return [await f for f in sched.submit(utterances("z"), index=0)]

    results = run_with(engine, executor, body, batch_size=2, max_wait_ms=0.0, max_queue=2)
    assert_audio_of(results, engine, ["z"])


# -- failures ------------------------------------------------------------------------------


def test_an_engine_error_fails_only_its_batch_and_the_scheduler_keeps_serving(
    executor: ThreadPoolExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    engine = FakeEngine(fail_on={"boom"})
    texts = ("good", "boom", "fine", "okay")  # one length, so batches keep arrival order

    async def body(sched: Scheduler) -> tuple[list[object], list[FloatArray]]:
        futures = [f for t in texts for f in sched.submit(utterances(t), index=0)]
        outcomes = list(await asyncio.gather(*futures, return_exceptions=True))
        later = [await f for f in sched.submit(utterances("after"), index=0)]
        return outcomes, later

    with caplog.at_level(logging.ERROR, logger="voxserve.scheduler"):
        outcomes, later = run_with(engine, executor, body, batch_size=2, max_wait_ms=0.0)

    assert engine.batches == [["good", "boom"], ["fine", "okay"], ["after"]]
    assert isinstance(outcomes[0], EngineError)
    assert isinstance(outcomes[1], EngineError)
    assert_audio_of(outcomes[2:], engine, ["fine", "okay"])  # type: ignore[arg-type]
    assert_audio_of(later, engine, ["after"])
    assert any("inference failed" in r.getMessage() for r in caplog.records)
