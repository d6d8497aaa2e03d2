"""Admission by estimated work: take a request only while its wait stays under a bound.

Counting requests says nothing about how long the newest one will wait: one request of
4,096 digits is minutes of inference, sixty-four "Hi." are a fraction of a second. So
every request that is going to synthesize (a cache miss) is costed first, from its
normalized sentences and the pace the scheduler learned
(:meth:`~voxserve.synthesizer.Synthesizer.estimate`), and :class:`Admission` keeps the
sum of what admitted requests still have to do::

    estimated wait of a new request = work still to do / rate at which work gets done

A request is admitted while that wait is at most ``max_wait`` seconds; otherwise it is
refused at once with :class:`~voxserve.errors.Overloaded`, whose ``retry_after`` is when
enough of the work ahead will be done for it to fit. A request on an idle machine is
always admitted, however long: the bound is on waiting, not on size (the size limits are
``max_input_chars`` and ``max_spoken_chars``).

The work goes down as each sentence is synthesized (:meth:`Ticket.done`), and whatever
is left when the request ends, finished, failed or abandoned, is given back at once
(:meth:`Ticket.close`). The rate starts at one second of estimated work per second per
lane, and then follows what the machine actually gets done while it is busy: the pace's
estimates leave out encoding, HTTP and whatever else shares the cores, and under
overload those are a large part of the time (measured on 2 cores with 100 clients on
the same machine: about half).

Admission also keeps the scheduler's queue bound for every admitted request: each request
queues at most ``footprint`` sentences at a time (the stream's read-ahead), so the sum of
footprints of admitted requests is kept within ``max_queue``. An admitted stream is
therefore never refused halfway through, after its ``200`` was sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from voxserve.errors import Overloaded

#: Seconds of busy time over which one sample of the work rate is taken.
RATE_INTERVAL = 1.0
#: Weight of the newest sample in the rate's running mean.
RATE_WEIGHT = 0.3


class Ticket:
    """One admitted request's share of the work; close it when the request ends."""

    def __init__(
        self,
        admission: Admission,
        costs: Sequence[float],
        footprint: int,
        *,
        background: bool = False,
    ) -> None:
        self._admission = admission
        self._costs = list(costs)
        self.footprint = footprint
        self.background = background
        """Background work (transcription): it waits behind speech, never ahead of it."""
        """Sentences this request may have queued at once."""
        self.remaining = sum(costs)
        """Estimated inference seconds it still needs."""
        self.closed = False

    def done(self, index: int) -> None:
        """Sentence ``index`` was synthesized: its estimated cost is no longer ahead."""
        if self.closed or not 0 <= index < len(self._costs):
            return
        cost, self._costs[index] = self._costs[index], 0.0
        self.remaining -= cost
        self._admission._release(cost, 0, done=True, background=self.background)

    def close(self) -> None:
        """The request ended: give back what it did not use. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self._admission._release(self.remaining, self.footprint, background=self.background)
        self.remaining = 0.0


class Admission:
    """The machine-wide admission gate, shared by every door (HTTP today, others later).

    Single-threaded: call it from the event loop only.
    """

    def __init__(
        self,
        *,
        lanes: int,
        max_wait: float,
        max_queue: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``lanes``: inference runs at once; ``max_wait``: seconds a new request may be
        expected to wait; ``max_queue``: sentences all admitted requests may queue."""
        if lanes < 1:
            raise ValueError(f"Admission needs at least one lane, got {lanes}")
        self.lanes = lanes
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.work = 0.0
        """Estimated inference seconds the admitted requests still need."""
        self.background_work = 0.0
        """The part of :attr:`work` that is background work (transcription)."""
        self.queued = 0
        """Sum of the admitted requests' footprints."""
        self.admitted = 0
        """Requests admitted and not yet closed."""
        self.rate = float(lanes)
        """Seconds of estimated work done per second while busy (lanes, to begin with)."""
        self._clock = clock
        self._since: float | None = None
        """Start of the current busy interval over which the rate is sampled."""
        self._drained = 0.0
        """Estimated work done since then."""
        self.on_refused: Callable[[], None] = lambda: None
        """Called at each refusal (the server counts them in a metric)."""

    def wait(self, *, background: bool = False) -> float:
        """Estimated seconds before a request arriving now starts being served.

        Speech waits for the speech admitted before it: background work keeps at most its
        share of the lanes while speech waits (voxserve.lanes). Background work waits for
        everything.
        """
        work = self.work if background else self.work - self.background_work
        return max(0.0, work) / self.rate

    def check(self, footprint: int = 0, *, background: bool = False) -> float:
        """The estimated wait, if a request of ``footprint`` queued sentences fits now.

        With ``footprint`` 0 it tells whether any request could be admitted: the server
        refuses with it before parsing or planning anything, the cheapest 503 there is.

        Raises:
            Overloaded: the estimated wait is over ``max_wait``, or ``footprint`` does not
                fit in the queue; ``retry_after`` is set.
        """
        wait = self.wait(background=background)
        if self.admitted and wait > self.max_wait:
            self.on_refused()
            raise Overloaded(
                f"The server is busy: a new request would wait about {wait:.0f} s "
                f"(limit {self.max_wait:g} s); retry later.",
                retry_after=wait - self.max_wait,
            )
        if self.admitted and self.queued + footprint > self.max_queue:
            self.on_refused()
            raise Overloaded(
                f"The synthesis queue is full ({self.max_queue} sentences); retry shortly.",
                retry_after=max(1.0, wait),
            )
        return wait

    def admit(self, costs: Sequence[float], footprint: int, *, background: bool = False) -> Ticket:
        """Admit a request of per-sentence (or per-window) ``costs`` in inference seconds,
        or raise Overloaded (see :meth:`check`)."""
        self.check(footprint, background=background)
        ticket = Ticket(self, costs, footprint, background=background)
        if not self.admitted:
            self._since, self._drained = self._clock(), 0.0
        self.work += ticket.remaining
        if background:
            self.background_work += ticket.remaining
        self.queued += footprint
        self.admitted += 1
        return ticket

    def _release(
        self, work: float, footprint: int, *, done: bool = False, background: bool = False
    ) -> None:
        self.work = max(0.0, self.work - work)
        if background:
            self.background_work = max(0.0, self.background_work - work)
        if done:
            self._drained += work
            self._sample()
        if footprint:
            self.queued -= footprint
            self.admitted -= 1
            if not self.admitted:
                self.work = self.background_work = 0.0  # no drift from rounding
                self._since = None  # idle time says nothing about the rate

    def _sample(self) -> None:
        """Fold the work done over the last busy interval into the rate."""
        now = self._clock()
        if self._since is None or now - self._since < RATE_INTERVAL:
            return
        sample = self._drained / (now - self._since)
        self.rate += RATE_WEIGHT * (sample - self.rate)
        self.rate = min(2.0 * self.lanes, max(0.05 * self.lanes, self.rate))
        self._since, self._drained = now, 0.0
