"""The machine's lanes shared by speech and background work (voxserve.lanes)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from voxserve.lanes import (
    BACKGROUND_NICENESS,
    INFERENCE_NICENESS,
    Lanes,
    LaneShare,
    yield_to_loop,
    yield_to_speech,
)

pytestmark = pytest.mark.inprocess


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _queue(lanes: Lanes, kinds: str, order: list[str]) -> list[asyncio.Task[None]]:
    """Queue one waiter per letter of ``kinds`` (s: speech, b: background), in order."""

    async def wait(name: str, background: bool) -> None:
        await lanes.take(background=background)
        order.append(name)

    tasks = []
    for index, kind in enumerate(kinds):
        tasks.append(asyncio.create_task(wait(f"{kind}{index}", kind == "b")))
        await _settle()
    return tasks


def test_background_keeps_half_the_lanes_while_speech_waits() -> None:
    async def main() -> list[str]:
        lanes = Lanes(2)
        await lanes.take(background=True)
        await lanes.take(background=True)
        order: list[str] = []
        tasks = await _queue(lanes, "bbbs", order)
        lanes.give(background=True)  # background still holds one, its share: speech next
        await _settle()
        lanes.give(background=True)  # background holds none now: its turn
        await _settle()
        assert order == ["s3", "b0"]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return order

    asyncio.run(main())


def test_speech_is_not_queued_behind_a_burst_of_background_work() -> None:
    async def main() -> None:
        lanes = Lanes(2)
        await lanes.take(background=True)
        await lanes.take()  # speech holds the other lane
        order: list[str] = []
        tasks = await _queue(lanes, "bbbbbbbbs", order)
        lanes.give(background=True)  # background is below its share now
        await _settle()
        lanes.give()
        await _settle()
        assert order == ["b0", "s8"], "speech waited behind eight background waiters"
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def test_one_lane_alternates_between_kinds() -> None:
    async def main() -> list[str]:
        lanes = Lanes(1)
        await lanes.take()
        order: list[str] = []
        await _queue(lanes, "sbsbsb", order)
        for name in ["first", *range(5)]:
            del name
            holder_background = bool(order) and order[-1].startswith("b")
            lanes.give(background=holder_background)
            await _settle()
        return order

    order = asyncio.run(main())
    kinds = [name[0] for name in order]
    assert kinds == ["b", "s", "b", "s", "b", "s"]


def test_background_alone_takes_every_lane_and_speech_alone_too() -> None:
    async def main() -> None:
        lanes = Lanes(3)
        for _ in range(3):
            await asyncio.wait_for(lanes.take(background=True), 1)
        assert lanes.free == 0
        for _ in range(3):
            lanes.give(background=True)
        for _ in range(3):
            await asyncio.wait_for(lanes.take(), 1)
        assert lanes.free == 0

    asyncio.run(main())


def test_no_exclusive_run_while_background_work_waits() -> None:
    async def main() -> None:
        lanes = Lanes(2)
        await lanes.take()
        await lanes.take(background=True)
        waiter = asyncio.create_task(lanes.take(background=True))
        await _settle()
        lanes.give(background=True)  # handed to the waiter at once
        await _settle()
        assert waiter.done()
        assert lanes.take_rest() is None
        lanes.give(background=True)
        assert lanes.take_rest() == 1

    asyncio.run(main())


def test_a_cancelled_background_waiter_leaves_no_trace() -> None:
    async def main() -> None:
        lanes = Lanes(1)
        await lanes.take()
        waiter = asyncio.create_task(lanes.take(background=True))
        await _settle()
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        lanes.give()
        assert lanes.free == 1
        await asyncio.wait_for(lanes.take(), 1)

    asyncio.run(main())


def test_a_lane_share_keeps_to_its_cap_and_a_cancelled_waiter_leaks_nothing() -> None:
    async def scenario() -> None:
        lanes = Lanes(3)
        share = LaneShare(lanes, cap=1)
        await share.take()
        assert (share.held, lanes.free) == (1, 2)  # a lane is free, but the cap is reached
        second = asyncio.ensure_future(share.take())
        third = asyncio.ensure_future(share.take())
        await asyncio.sleep(0)
        assert not second.done()
        second.cancel()
        await asyncio.sleep(0)
        share.give()  # the place passes to the third waiter, not the cancelled one
        await asyncio.wait_for(third, 1)
        assert (share.held, lanes.free) == (1, 2)
        share.give()
        assert (share.held, lanes.free) == (0, 3)

    asyncio.run(scenario())


def test_lanes_held_by_yielding_background_work_leave_speech_every_core() -> None:
    async def main() -> None:
        lanes = Lanes(3)
        await lanes.take(background=True, yielding=True)
        await lanes.take()  # a speech run
        assert lanes.take_rest() == 1  # the free lane; the job's it shares
        assert lanes.free == 0
        lanes.give(2)
        await lanes.take(background=True)  # a transcription: it does not yield
        await lanes.take()
        assert lanes.take_rest() is None
        lanes.give(background=True)
        lanes.give()
        await lanes.take()
        waiter = asyncio.create_task(lanes.take())  # speech waiting: nobody runs alone
        await _settle()
        assert lanes.take_rest() is None
        lanes.give()
        await waiter
        lanes.give()
        lanes.give(background=True, yielding=True)
        assert lanes.free == 3

    asyncio.run(main())


def test_a_yielding_lane_handed_to_a_waiter_counts_as_yielding() -> None:
    async def main() -> None:
        lanes = Lanes(2)
        await lanes.take()
        await lanes.take()
        waiter = asyncio.create_task(lanes.take(background=True, yielding=True))
        await _settle()
        lanes.give()  # handed to the job
        await waiter
        assert lanes.take_rest() == 0  # the speech run left may have both cores
        lanes.give(background=True, yielding=True)
        assert lanes.take_rest() == 1

    asyncio.run(main())


def test_only_background_work_yields() -> None:
    with pytest.raises(ValueError, match="only background work"):
        asyncio.run(Lanes(2).take(yielding=True))


def test_yielding_threads_run_below_inference_threads() -> None:
    def mine() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def niceness(initializer: Callable[[], None]) -> int:
        with ThreadPoolExecutor(max_workers=1, initializer=initializer) as pool:
            return pool.submit(mine).result()

    base = os.getpriority(os.PRIO_PROCESS, 0)
    if base > INFERENCE_NICENESS:
        pytest.skip(f"this process runs at niceness {base} already")
    assert niceness(yield_to_loop) == INFERENCE_NICENESS
    assert niceness(yield_to_speech) == BACKGROUND_NICENESS > INFERENCE_NICENESS


def test_speech_borrows_a_lane_when_yielding_jobs_hold_them_all() -> None:
    async def main() -> None:
        lanes = Lanes(1)
        await lanes.take(background=True, yielding=True)  # a job's sentence
        await asyncio.wait_for(lanes.take(), 1)  # speech starts at once beside it
        assert lanes.free == -1
        assert lanes.take_rest() == 0  # alone on the machine's one core, as speech goes
        second = asyncio.create_task(lanes.take())  # one borrower at a time
        job_next = asyncio.create_task(lanes.take(background=True, yielding=True))
        await _settle()
        assert not second.done()
        lanes.give()  # the first speech run ends: the second borrows in its turn
        await asyncio.wait_for(second, 1)
        assert lanes.free == -1
        lanes.give(background=True, yielding=True)  # the sentence ends: the lane is paid back
        await _settle()
        assert lanes.free == 0
        assert not job_next.done()  # the job's next sentence waits for the borrower
        lanes.give()
        await asyncio.wait_for(job_next, 1)
        lanes.give(background=True, yielding=True)
        assert lanes.free == 1

    asyncio.run(main())


def test_nothing_borrows_beside_a_transcription_or_a_free_lane() -> None:
    async def main() -> None:
        lanes = Lanes(2)
        await lanes.take(background=True)  # a transcription: it does not yield
        await lanes.take(background=True, yielding=True)
        waiter = asyncio.create_task(lanes.take())
        await _settle()
        assert not waiter.done()
        assert lanes.free == 0
        lanes.give(background=True)
        await asyncio.wait_for(waiter, 1)  # handed the freed lane, not a borrowed one
        assert lanes.free == 0
        lanes.give()
        lanes.give(background=True, yielding=True)
        assert lanes.free == 2

    asyncio.run(main())
