"""Inference scheduler: one per loaded engine, all sharing the machine's inference lanes.

Every request's utterances go through here. The scheduler keeps a bounded queue, hands
the engine batches of up to ``batch_size`` items (flushing early after ``max_wait_ms``),
and resolves exactly one future per item. It knows nothing about the engine beyond
:class:`~voxserve.engines.base.Engine`.

**Order: earliest due first.** Every item says when someone needs it
(:class:`voxserve.deadlines.DueTimes`): a stream's first sentence and a whole response
when they could at best be ready (so among simultaneous requests the shortest goes first,
and none starves), a stream's later sentences, and the rest of its first after the head
(Engine.infer_head, Engine.infer_rest), when playback reaches them.

**Lanes.** On a CPU one inference with every core finishes a sentence soonest, but one
inference per core, each on one thread, gets more audio out of the machine (measured on
2 cores: 1.12 to 1.35 x; onnxruntime's intra-op threads idle through the model's serial
stretches). So the machine's cores are :class:`Lanes`, shared by every scheduler: a run
takes one lane, except that a sentence someone is waiting for, with nothing else due
before it would finish, runs *exclusively* on all of them. A lone request is as fast as
the model allows; under load every core works on its own sentence.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from voxserve.deadlines import Pace
from voxserve.engines.base import Engine, Head, Rest
from voxserve.errors import Overloaded
from voxserve.lanes import Lanes, LaneShare
from voxserve.metrics import Metrics
from voxserve.types import FloatArray, Utterance

log = logging.getLogger(__name__)

#: How many batches ahead the scheduler looks for items of similar length.
LOOKAHEAD_BATCHES = 4


def _length(utterance: Utterance) -> int:
    """Work size of an utterance: phoneme ids, or characters for engines that take text."""
    return len(utterance.ids) or len(utterance.text)


Kind = Literal["infer", "head", "rest"]
"""What an item asks of the engine: a whole utterance, its head, or the rest after a head."""


@dataclass(order=True)
class _Item:
    priority: tuple[float, int]
    """(due, arrival): earliest due first, ties in submission order."""
    work: Utterance | Rest = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)
    kind: Kind = field(compare=False, default="infer")
    head_seconds: float = field(compare=False, default=0.0)
    read_ahead: bool = field(compare=False, default=False)
    queued: float = field(compare=False, default=0.0)

    @property
    def due(self) -> float:
        return self.priority[0]

    @property
    def utterance(self) -> Utterance:
        return self.work.utterance if isinstance(self.work, Rest) else self.work

    @property
    def call(self) -> tuple[Kind, float]:
        """Items with equal calls can share one batch."""
        return self.kind, self.head_seconds


class Scheduler:
    """Queues utterances for one engine and runs them in batches on an executor."""

    def __init__(
        self,
        engine: Engine,
        executor: Executor,
        *,
        lanes: Lanes | None = None,
        batch_size: int = 4,
        max_wait_ms: float = 5.0,
        max_queue: int = 256,
        metrics: Metrics | None = None,
    ) -> None:
        """``lanes``: the machine's, shared with other schedulers (default: the engine's own).

        ``executor`` needs a thread per lane. At most ``engine.lanes`` batches of this
        engine run at once (its :class:`~voxserve.lanes.LaneShare`).
        """
        self.engine = engine
        self.pace = Pace()
        self._metrics = metrics if metrics is not None else Metrics()
        self._executor = executor
        self._lanes = LaneShare(lanes if lanes is not None else Lanes(engine.lanes), engine.lanes)
        self._batch_size = batch_size
        self._max_wait = max_wait_ms / 1000
        self._max_queue = max_queue
        self._heap: list[_Item] = []
        self._live = 0
        """Items queued or running whose future is not done: what the queue bound counts
        (a cancelled request's items wait in the heap until the worker drops them)."""
        self._arrivals = itertools.count()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retiring = False
        self._running: set[asyncio.Task[None]] = set()

    @property
    def depth(self) -> int:
        """Items waiting (cancelled ones included until the worker drops them)."""
        return len(self._heap)

    def start(self) -> None:
        if self._task is None or self._task.done():
            # An Event belongs to the loop it was first awaited in: a new worker (possibly
            # in a new loop, as in tests) needs a new one.
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"scheduler-{self.engine.voice.id}"
            )

    def retire(self) -> None:
        """Let the worker exit once the queue is empty (its engine was unloaded).

        A late submission (a stream that still holds this scheduler) restarts the worker,
        so nothing queued is ever stranded.
        """
        self._retiring = True
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop the worker and fail whatever is still queued."""
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._running.clear()
        for item in self._heap:
            item.future.cancel()
        self._heap.clear()

    def submit(
        self, utterances: Sequence[Utterance], *, due: float, read_ahead: bool = False
    ) -> list[asyncio.Future[FloatArray]]:
        """Queue the utterances of one sentence; one future per item, resolved in time.

        ``due``: the ``time.monotonic()`` by which the audio is needed
        (:class:`~voxserve.deadlines.DueTimes`).
        ``read_ahead``: queued before anyone waits for it (a stream's later sentences); it
        never keeps a sentence someone waits for from running on every lane, until it is
        due itself.

        Raises Overloaded at once, queueing nothing, when the queue is full.
        """
        return self._enqueue(utterances, "infer", due=due, read_ahead=read_ahead)

    def submit_head(
        self, utterances: Sequence[Utterance], seconds: float, *, due: float
    ) -> list[asyncio.Future[Head]]:
        """Queue utterances for their first ``seconds`` of audio (Engine.infer_head)."""
        return self._enqueue(utterances, "head", due=due, seconds=seconds)

    def submit_rest(self, rests: Sequence[Rest], *, due: float) -> list[asyncio.Future[FloatArray]]:
        """Queue what follows heads (Engine.infer_rest): read-ahead, due when the heads end."""
        return self._enqueue(rests, "rest", due=due, read_ahead=True)

    def _enqueue(
        self,
        works: Sequence[Utterance | Rest],
        kind: Kind,
        *,
        due: float,
        read_ahead: bool = False,
        seconds: float = 0.0,
    ) -> list[asyncio.Future[Any]]:
        if self._live + len(works) > self._max_queue:
            raise Overloaded(
                f"The synthesis queue for {self.engine.voice.id} is full "
                f"({self._max_queue} sentences); retry shortly.",
                retry_after=1.0,
            )
        self.start()
        loop = asyncio.get_running_loop()
        priority = (due, next(self._arrivals))
        now = time.monotonic()
        futures = []
        for work in works:
            future: asyncio.Future[Any] = loop.create_future()
            self._live += 1
            future.add_done_callback(self._settled)
            item = _Item(priority, work, future, kind, seconds, read_ahead, now)
            heapq.heappush(self._heap, item)
            futures.append(future)
        self._report_depth()
        self._wakeup.set()
        return futures

    def _settled(self, _: asyncio.Future[Any]) -> None:
        self._live -= 1

    def _pop_live(self) -> _Item | None:
        while self._heap:
            item = heapq.heappop(self._heap)
            if not item.future.done():  # a cancelled request's items never reach the model
                return item
        return None

    def _take_batch(self) -> list[_Item]:
        """The most urgent item, plus the items closest to it in length among the next few.

        Grouping similar lengths limits padding; looking only a few batches ahead keeps the
        due order nearly intact.
        """
        head = self._pop_live()
        if head is None:
            return []
        window: list[_Item] = []
        other: list[_Item] = []  # items that ask the engine for something else
        while len(window) < self._batch_size * LOOKAHEAD_BATCHES and (item := self._pop_live()):
            (window if item.call == head.call else other).append(item)
        size = _length(head.utterance)
        window.sort(key=lambda item: abs(_length(item.utterance) - size))  # stable: ties keep order
        batch = [head, *window[: self._batch_size - 1]]
        for item in (*window[self._batch_size - 1 :], *other):
            heapq.heappush(self._heap, item)
        self._report_depth()
        voice = self.engine.voice.id
        now = time.monotonic()
        self._metrics.batch_size.labels(voice).observe(len(batch))
        for item in batch:
            self._metrics.queue_wait.labels(voice).observe(now - item.queued)
        return batch

    def _may_run_alone(self, batch: list[_Item]) -> bool:
        """Whether ``batch`` should have every lane: someone waits for all of it, and nobody
        waits for anything still queued before the batch would be done."""
        if self.engine.lanes < 2:
            return False
        now = time.monotonic()
        if not all(self._waited_for(item, now) for item in batch):
            return False
        done = now + sum(
            self.pace.inference_seconds(len(i.utterance.text), i.utterance.params.speed)
            for i in batch
        )
        return not any(self._waited_for(i, done) for i in self._heap if not i.future.done())

    @staticmethod
    def _waited_for(item: _Item, now: float) -> bool:
        """Someone waits for the item at ``now``: it is no read-ahead, or it is due."""
        return not item.read_ahead or item.due <= now

    def _report_depth(self) -> None:
        self._metrics.queue_depth.labels(self.engine.voice.id).set(len(self._heap))

    async def _run(self) -> None:
        while True:
            if not self._heap:
                if self._retiring:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._max_wait and len(self._heap) < self._batch_size:
                await asyncio.sleep(self._max_wait)
            # Take a batch only once a lane is free, so items leave in due order.
            await self._lanes.take()
            batch = self._take_batch()
            if not batch:
                self._lanes.give()
                continue
            extra = self._lanes.take_rest() if self._may_run_alone(batch) else None
            alone = extra is not None or self._lanes.total == 1
            task = asyncio.get_running_loop().create_task(
                self._infer(batch, 1 + (extra or 0), exclusive=alone)
            )
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _infer(self, batch: list[_Item], lanes: int, *, exclusive: bool) -> None:
        """Run one batch on the executor and resolve its futures; always frees its
        ``lanes``. ``exclusive``: on every core (no other speech runs; Lanes.take_rest)."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            results = await loop.run_in_executor(
                self._executor, lambda: self._call(batch, exclusive=exclusive)
            )
        except asyncio.CancelledError:
            for item in batch:
                item.future.cancel()
            raise
        except Exception as exc:
            log.exception("inference failed for a batch of %d", len(batch))
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        finally:
            self._lanes.give(lanes)
        elapsed = time.monotonic() - started
        self._observe(batch, results, elapsed, exclusive)
        for item, audio in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(audio)

    def _call(self, batch: list[_Item], *, exclusive: bool) -> list[Any]:
        """The engine call the batch's items ask for (they all ask for the same)."""
        kind, seconds = batch[0].call
        if kind == "rest":
            rests = [cast(Rest, item.work) for item in batch]
            return self.engine.infer_rest(rests, exclusive=exclusive)
        utterances = [item.utterance for item in batch]
        if kind == "head":
            return self.engine.infer_head(utterances, seconds, exclusive=exclusive)
        return self.engine.infer(utterances, exclusive=exclusive)

    def _observe(
        self, batch: list[_Item], results: list[Any], elapsed: float, exclusive: bool
    ) -> None:
        if batch[0].kind == "infer":  # heads and rests are parts: they would skew the pace
            rate = self.engine.sample_rate
            audio = sum(
                len(r) / rate * i.utterance.params.speed
                for i, r in zip(batch, results, strict=True)
            )
            self.pace.observe(sum(len(i.utterance.text) for i in batch), audio, elapsed)
        voice = self.engine.voice.id
        self._metrics.inference.labels(voice).observe(elapsed)
        self._metrics.inference_runs.labels(voice, "exclusive" if exclusive else "lane").inc()
