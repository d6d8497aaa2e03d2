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
from voxserve.lanes import Lanes
from voxserve.scheduler import Scheduler
from voxserve.types import FloatArray, SynthesisParams, Utterance

pytestmark = pytest.mark.inprocess


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
    lanes=st.integers(min_value=1, max_value=3),
    rng=st.randoms(use_true_random=False),
)
def test_every_item_gets_exactly_its_own_result_under_any_interleaving(
    shapes: list[list[int]], batch_size: int, max_wait_ms: float, lanes: int, rng: random.Random
) -> None:
    """Property: concurrent requests, each submitting its sentences one by one (like
    Synthesizer.astream, sometimes waiting for earlier sentences first), all get exactly
    one result per utterance, each the audio of that very utterance, in submission order;
    every utterance reaches the engine exactly once and no batch exceeds batch_size.

    ``shapes[r][s]`` is the number of utterances in sentence ``s`` of request ``r``; later
    sentences are read-ahead with random due times, and up to ``lanes`` batches run at once.
    """
    engine = FakeEngine(lanes=lanes)
    texts = {
        r: [[f"r{r} s{s} u{u}" for u in range(n)] for s, n in enumerate(sentences)]
        for r, sentences in enumerate(shapes)
    }
    # Decide every yield point up front so the example is reproducible.
    pauses = {r: [rng.randint(0, 3) for _ in sentences] for r, sentences in enumerate(shapes)}
    waits = {r: [rng.random() < 0.4 for _ in sentences] for r, sentences in enumerate(shapes)}
    dues = {r: [rng.uniform(-1, 1) for _ in sentences] for r, sentences in enumerate(shapes)}

    async def request(sched: Scheduler, r: int) -> list[list[FloatArray]]:
        pending: list[list[asyncio.Future[FloatArray]]] = []
        results: list[list[FloatArray]] = []
        for s, sentence in enumerate(texts[r]):
            for _ in range(pauses[r][s]):
                await asyncio.sleep(0)
            due = time.monotonic() + dues[r][s]
            pending.append(sched.submit(utterances(*sentence), due=due, read_ahead=s > 0))
            if waits[r][s]:
                while pending:
                    results.append([await f for f in pending.pop(0)])
        while pending:
            results.append([await f for f in pending.pop(0)])
        return results

    async def body(sched: Scheduler) -> list[list[list[FloatArray]]]:
        return await asyncio.gather(*(request(sched, r) for r in texts))

    with ThreadPoolExecutor(max_workers=lanes) as pool:
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
        futures = [f for t in texts for f in sched.submit(utterances(t), due=0.0)]
        return [await f for f in futures]

    results = run_with(engine, executor, body, batch_size=3, max_wait_ms=100.0)
    assert_audio_of(results, engine, texts)
    # 7 queued at once: two full batches go without waiting, the rest after max_wait.
    assert engine.batches == [texts[0:3], texts[3:6], texts[6:7]]


def test_a_partial_batch_is_flushed_after_max_wait(executor: ThreadPoolExecutor) -> None:
    """Two items never fill a batch of 8; they still run, together, once max_wait passes."""
    engine = FakeEngine()

    async def body(sched: Scheduler) -> list[FloatArray]:
        futures = sched.submit(utterances("one", "two"), due=0.0)
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
        futures = [f for t in texts for f in sched.submit(utterances(t), due=0.0)]
        return [await f for f in futures]

    results = run_with(engine, executor, body, batch_size=3, max_wait_ms=0.0)
    assert_audio_of(results, engine, texts)
    assert engine.batches == [["x" * 10, "z" * 11, "v" * 12], ["y" * 50, "w" * 49, "u" * 48]]


# -- order -------------------------------------------------------------------------------


def test_items_run_earliest_due_first(executor: ThreadPoolExecutor) -> None:
    """Request B's first sentence, submitted after request A's later sentences but due
    before them, is inferred first; A's sentences then follow in their own order."""
    engine = FakeEngine()

    async def body(sched: Scheduler) -> list[FloatArray]:
        futures = [
            f
            for s in range(1, 6)
            for f in sched.submit(utterances(f"A{s}"), due=10.0 + s, read_ahead=True)
        ]
        futures += sched.submit(utterances("B0"), due=1.0)
        return [await f for f in futures]

    results = run_with(engine, executor, body, batch_size=1, max_wait_ms=0.0)
    assert_audio_of(results, engine, ["A1", "A2", "A3", "A4", "A5", "B0"])
    assert engine.inferred() == ["B0", "A1", "A2", "A3", "A4", "A5"]


def test_equal_due_times_run_in_arrival_order(executor: ThreadPoolExecutor) -> None:
    engine = FakeEngine()

    async def body(sched: Scheduler) -> None:
        futures = [f for r in "CAB" for f in sched.submit(utterances(f"{r}1"), due=1.0)]
        await asyncio.gather(*futures)

    run_with(engine, executor, body, batch_size=1, max_wait_ms=0.0)
    assert engine.inferred() == ["C1", "A1", "B1"]


@settings(max_examples=40, deadline=None)
@given(dues=st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=12))
def test_queued_items_leave_in_due_order_whatever_the_submission_order(dues: list[float]) -> None:
    """Property: items all queued before the worker runs reach the engine sorted by due,
    ties in submission order."""
    engine = FakeEngine()

    async def body(sched: Scheduler) -> None:
        futures = [f for i, d in enumerate(dues) for f in sched.submit(utterances(f"{i}"), due=d)]
        await asyncio.gather(*futures)

    with ThreadPoolExecutor(max_workers=1) as pool:
        run_with(engine, pool, body, batch_size=1, max_wait_ms=0.0)
    expected = [f"{i}" for i, _ in sorted(enumerate(dues), key=lambda pair: (pair[1], pair[0]))]
    assert engine.inferred() == expected


# -- lanes ---------------------------------------------------------------------------------


class SlowEngine(FakeEngine):
    """A FakeEngine whose calls take ``seconds`` and that records how many overlap."""

    def __init__(self, seconds: float = 0.05, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.seconds = seconds
        self.active = 0
        self.peak = 0
        self.overlapped: list[bool] = []
        """Per call: whether another call was running when it started."""
        self._guard = threading.Lock()

    def infer(self, batch: Sequence[Utterance], *, exclusive: bool = False) -> list[FloatArray]:
        with self._guard:
            self.overlapped.append(self.active > 0)
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.seconds)
        with self._guard:
            self.active -= 1
        return super().infer(batch, exclusive=exclusive)


def test_an_engine_with_two_lanes_runs_two_batches_at_once() -> None:
    engine = SlowEngine(lanes=2)
    with ThreadPoolExecutor(max_workers=2) as pool:

        async def body(sched: Scheduler) -> list[FloatArray]:
            futures = [f for i in range(6) for f in sched.submit(utterances(f"t{i}"), due=0.0)]
            return [await f for f in futures]

        results = run_with(engine, pool, body, batch_size=1, max_wait_ms=0.0)
    assert_audio_of(results, engine, [f"t{i}" for i in range(6)])
    assert engine.peak == 2
    assert not any(engine.exclusive)  # several sentences were waited for: one lane each


def test_a_sentence_waited_for_alone_runs_exclusively_while_read_ahead_waits() -> None:
    """One stream: its first sentence gets every core; the read-ahead sentences queued with
    it run only after it, on a lane each, side by side."""
    engine = SlowEngine(lanes=2)
    with ThreadPoolExecutor(max_workers=2) as pool:

        async def body(sched: Scheduler) -> list[FloatArray]:
            later = time.monotonic() + 60
            futures = sched.submit(utterances("first"), due=time.monotonic())
            futures += sched.submit(utterances("second"), due=later, read_ahead=True)
            futures += sched.submit(utterances("third"), due=later + 1, read_ahead=True)
            return [await f for f in futures]

        results = run_with(engine, pool, body, batch_size=1, max_wait_ms=0.0)
    assert_audio_of(results, engine, ["first", "second", "third"])
    first, *side_by_side = engine.inferred()  # the two read-aheads start in either order
    assert first == "first"
    assert sorted(side_by_side) == ["second", "third"]
    assert engine.exclusive == [True, False, False]
    assert engine.overlapped == [False, False, True]


def test_a_read_ahead_sentence_that_is_due_keeps_the_lanes_shared() -> None:
    """A stream about to fall behind is waited for too: no run takes every lane from it."""
    engine = SlowEngine(lanes=2)
    with ThreadPoolExecutor(max_workers=2) as pool:

        async def body(sched: Scheduler) -> list[FloatArray]:
            now = time.monotonic()
            futures = sched.submit(utterances("new first"), due=now - 1)
            futures += sched.submit(utterances("late"), due=now, read_ahead=True)
            return [await f for f in futures]

        results = run_with(engine, pool, body, batch_size=1, max_wait_ms=0.0)
    assert_audio_of(results, engine, ["new first", "late"])
    assert engine.exclusive == [False, False]
    assert engine.peak == 2


@pytest.mark.parametrize("yielding", [True, False])
def test_a_sentence_waited_for_alone_runs_on_every_core_beside_a_job_only(yielding: bool) -> None:
    """A job's sentence on a background lane yields its core (Lanes): a lone speech
    sentence still runs exclusively. A transcription does not: the sentence keeps to its
    lane."""
    engine = SlowEngine(lanes=2)
    lanes = Lanes(2)
    with ThreadPoolExecutor(max_workers=2) as pool:

        async def main() -> None:
            await lanes.take(background=True, yielding=yielding)
            sched = Scheduler(engine, pool, lanes=lanes, batch_size=1, max_wait_ms=0)
            try:
                await asyncio.gather(*sched.submit(utterances("alone"), due=time.monotonic()))
            finally:
                await sched.stop()
            assert lanes.free == 1  # the sentence gave back its own lane, no more
            lanes.give(background=True, yielding=yielding)
            assert lanes.free == 2

        asyncio.run(main())
    assert engine.exclusive == [yielding]


def test_on_a_machine_of_one_lane_every_run_is_exclusive(executor: ThreadPoolExecutor) -> None:
    """With one lane nothing ever runs beside a batch, queued work or not."""
    engine = FakeEngine(lanes=1)

    async def body(sched: Scheduler) -> list[FloatArray]:
        futures = sched.submit(utterances("one"), due=0.0)
        futures += sched.submit(utterances("two"), due=0.0)
        return [await f for f in futures]

    run_with(engine, executor, body, batch_size=1, max_wait_ms=0.0)
    assert engine.exclusive == [True, True]


def test_a_one_lane_engine_among_more_lanes_keeps_to_one(executor: ThreadPoolExecutor) -> None:
    """A GPU engine (one lane) on a machine of four CPU lanes: never told it has them all."""
    engine = FakeEngine(lanes=1)

    async def main() -> None:
        sched = Scheduler(engine, executor, lanes=Lanes(4), batch_size=1, max_wait_ms=0)
        try:
            await asyncio.gather(*sched.submit(utterances("alone"), due=0.0))
        finally:
            await sched.stop()

    asyncio.run(main())
    assert engine.exclusive == [False]


def test_schedulers_sharing_lanes_never_run_more_than_the_lanes_allow() -> None:
    """Two voices, one machine of two lanes: at most two calls at once in all, and nobody
    runs exclusively while the other voice has work."""
    lock = threading.Lock()
    active = 0
    peak = 0

    class Counting(SlowEngine):
        def infer(self, batch: Sequence[Utterance], *, exclusive: bool = False) -> list[FloatArray]:
            nonlocal active, peak
            with lock:
                active += 2 if exclusive else 1
                peak = max(peak, active)
            try:
                return super().infer(batch, exclusive=exclusive)
            finally:
                with lock:
                    active -= 2 if exclusive else 1

    a, b = Counting(lanes=2, voice_id="a"), Counting(lanes=2, voice_id="b")

    async def main() -> list[FloatArray]:
        lanes = Lanes(2)
        with ThreadPoolExecutor(max_workers=2) as pool:
            scheds = [Scheduler(e, pool, lanes=lanes, batch_size=1, max_wait_ms=0) for e in (a, b)]
            try:
                futures = [
                    f
                    for i in range(5)
                    for sched in scheds
                    for f in sched.submit(utterances(f"{sched.engine.voice.id}{i}"), due=0.0)
                ]
                return list(await asyncio.gather(*futures))
            finally:
                for sched in scheds:
                    await sched.stop()

    results = asyncio.run(main())
    assert len(results) == 10
    assert peak == 2
    assert len(a.inferred()) == len(b.inferred()) == 5


def test_lanes_hand_a_freed_lane_to_the_first_waiter() -> None:
    async def main() -> list[str]:
        lanes = Lanes(1)
        order: list[str] = []
        await lanes.take()

        async def wait(name: str) -> None:
            await lanes.take()
            order.append(name)
            lanes.give()

        waiters = [asyncio.create_task(wait(n)) for n in ("first", "second")]
        await asyncio.sleep(0)
        assert lanes.free == 0
        lanes.give()
        await asyncio.gather(*waiters)
        assert lanes.free == 1
        return order

    assert asyncio.run(main()) == ["first", "second"]


def test_a_cancelled_lane_waiter_leaks_no_lane() -> None:
    async def main() -> int:
        lanes = Lanes(1)
        await lanes.take()
        waiter = asyncio.create_task(lanes.take())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        lanes.give()
        return lanes.free

    assert asyncio.run(main()) == 1


def test_take_rest_takes_every_other_lane_only_from_an_idle_machine() -> None:
    async def main() -> None:
        lanes = Lanes(3)
        await lanes.take()
        assert lanes.take_rest() == 2
        assert lanes.free == 0
        lanes.give(3)
        await lanes.take()
        await lanes.take()
        assert lanes.take_rest() is None  # another run holds a lane
        assert lanes.free == 1

    asyncio.run(main())


def test_lanes_need_at_least_one_lane() -> None:
    with pytest.raises(ValueError, match="at least one lane"):
        Lanes(0)


# -- cancellation --------------------------------------------------------------------------


def test_cancelled_items_never_reach_the_engine(executor: ThreadPoolExecutor) -> None:
    """A client that hangs up cancels its queued futures; the worker drops them unread."""
    engine = FakeEngine()

    async def body(sched: Scheduler) -> list[FloatArray]:
        kept = sched.submit(utterances("keep 1", "keep 2"), due=0.0)
        dropped = sched.submit(utterances("drop 1", "drop 2", "drop 3"), due=0.0)
        kept += sched.submit(utterances("keep 3"), due=1.0)
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
        futures = sched.submit(utterances("never 1", "never 2"), due=0.0)
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
        futures = sched.submit(utterances("a", "b", "c"), due=0.0)
        with pytest.raises(Overloaded) as info:
            sched.submit(utterances("d", "e"), due=0.0)  # 3 + 2 > 4: refused whole
        assert info.value.retry_after > 0
        assert "full" in info.value.message
        assert sched.depth == 3
        futures += sched.submit(utterances("f"), due=0.0)  # 3 + 1 = 4 still fits
        return [await f for f in futures]

    results = run_with(engine, executor, body, batch_size=2, max_wait_ms=0.0, max_queue=4)
    assert_audio_of(results, engine, ["a", "b", "c", "f"])
    assert sorted(engine.inferred()) == ["a", "b", "c", "f"]


def test_the_queue_accepts_work_again_once_it_drains(executor: ThreadPoolExecutor) -> None:
    engine = FakeEngine()

    async def body(sched: Scheduler) -> list[FloatArray]:
        first = sched.submit(utterances("x", "y"), due=0.0)
        with pytest.raises(Overloaded):
            sched.submit(utterances("z"), due=0.0)
        await asyncio.gather(*first)
        return [await f for f in sched.submit(utterances("z"), due=0.0)]

    results = run_with(engine, executor, body, batch_size=2, max_wait_ms=0.0, max_queue=2)
    assert_audio_of(results, engine, ["z"])


# -- failures ------------------------------------------------------------------------------


def test_an_engine_error_fails_only_its_batch_and_the_scheduler_keeps_serving(
    executor: ThreadPoolExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    engine = FakeEngine(fail_on={"boom"})
    texts = ("good", "boom", "fine", "okay")  # one length, so batches keep arrival order

    async def body(sched: Scheduler) -> tuple[list[object], list[FloatArray]]:
        futures = [f for t in texts for f in sched.submit(utterances(t), due=0.0)]
        outcomes = list(await asyncio.gather(*futures, return_exceptions=True))
        later = [await f for f in sched.submit(utterances("after"), due=0.0)]
        return outcomes, later

    with caplog.at_level(logging.ERROR, logger="voxserve.scheduler"):
        outcomes, later = run_with(engine, executor, body, batch_size=2, max_wait_ms=0.0)

    assert engine.batches == [["good", "boom"], ["fine", "okay"], ["after"]]
    assert isinstance(outcomes[0], EngineError)
    assert isinstance(outcomes[1], EngineError)
    assert_audio_of(outcomes[2:], engine, ["fine", "okay"])  # type: ignore[arg-type]
    assert_audio_of(later, engine, ["after"])
    assert any("inference failed" in r.getMessage() for r in caplog.records)


# -- heads and rests ---------------------------------------------------------------------------


def test_a_head_and_its_rest_come_back_as_the_whole_audio(executor: ThreadPoolExecutor) -> None:
    engine = FakeEngine()
    text = "a sentence long enough to cut"

    async def body(sched: Scheduler) -> FloatArray:
        (head,) = [await f for f in sched.submit_head(utterances(text), 0.01, due=0.0)]
        assert head.rest is not None
        (rest,) = [await f for f in sched.submit_rest([head.rest], due=1.0)]
        return np.concatenate([head.audio, rest])

    joined = run_with(engine, executor, body, batch_size=1, max_wait_ms=0.0)
    assert np.array_equal(joined, engine.render(text))
    assert engine.batches == [[text], [f"rest of {text}"]]


def test_heads_rests_and_whole_sentences_never_share_a_batch(
    executor: ThreadPoolExecutor,
) -> None:
    """Each batch is one engine call, so its items must all ask for the same call."""
    engine = FakeEngine()
    texts = ["head one", "whole one", "head two", "whole two"]

    async def body(sched: Scheduler) -> None:
        heads = sched.submit_head(utterances(texts[0]), 0.01, due=0.0)
        wholes = sched.submit(utterances(texts[1]), due=0.0)
        heads += sched.submit_head(utterances(texts[2]), 0.01, due=0.0)
        wholes += sched.submit(utterances(texts[3]), due=0.0)
        rests = [h.rest for h in await asyncio.gather(*heads) if h.rest is not None]
        await asyncio.gather(*wholes, *sched.submit_rest(rests, due=0.0))

    run_with(engine, executor, body, batch_size=4, max_wait_ms=0.0)
    assert sorted(map(sorted, engine.batches)) == [
        ["head one", "head two"],
        ["rest of head one", "rest of head two"],
        ["whole one", "whole two"],
    ]


def test_a_rest_is_read_ahead_and_waits_while_a_new_head_runs_alone() -> None:
    engine = SlowEngine(lanes=2)
    with ThreadPoolExecutor(max_workers=2) as pool:

        async def body(sched: Scheduler) -> None:
            (first,) = await asyncio.gather(
                *sched.submit_head(utterances("first " * 9), 0.01, due=0.0)
            )
            assert first.rest is not None
            later = time.monotonic() + 60
            futures = sched.submit_head(utterances("second " * 9), 0.01, due=time.monotonic())
            futures += sched.submit_rest([first.rest], due=later)
            await asyncio.gather(*futures)

        run_with(engine, pool, body, batch_size=1, max_wait_ms=0.0)
    assert engine.batches == [["first " * 9], ["second " * 9], [f"rest of {'first ' * 9}"]]
    assert engine.exclusive == [True, True, False]


def test_on_one_lane_a_sentence_starts_beside_a_job_sentence_not_after_it() -> None:
    engine = SlowEngine(lanes=1)
    lanes = Lanes(1)
    with ThreadPoolExecutor(max_workers=1) as pool:

        async def main() -> None:
            await lanes.take(background=True, yielding=True)  # held throughout
            sched = Scheduler(engine, pool, lanes=lanes, batch_size=1, max_wait_ms=0)
            try:
                done = sched.submit(utterances("now"), due=time.monotonic())
                await asyncio.wait_for(asyncio.gather(*done), 5)
            finally:
                await sched.stop()
            assert lanes.free == 0
            lanes.give(background=True, yielding=True)

        asyncio.run(main())
    assert engine.exclusive == [True]
