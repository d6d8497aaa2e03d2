"""Admission by estimated work: take a request only while its wait stays under a bound.

Counting requests says nothing about how long the newest one will wait: one request of
4,096 digits is minutes of inference, sixty-four "Hi." are a fraction of a second. So
every request that is going to synthesize (a cache miss) is costed first, from its
normalized sentences and the pace the scheduler learned
(:meth:`~voxserve.synthesizer.Synthesizer.estimate`), and :class:`Admission` keeps the
sum of what admitted requests still have to do::

    estimated wait of a new request = work that runs before it / rate at which work gets done

The work that runs before a speech request is that of the admitted requests due before
it (:func:`voxserve.deadlines.first_due`, the order the scheduler follows): a short
request is not refused for a backlog of long ones it will overtake, and a long one counts
everything shorter ahead of it. Background work (transcription, job chunks) waits for
all work.

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

from voxserve.deadlines import MAX_OVERTAKE_S, WHOLE_STRETCH, first_due
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
        due: float | None = None,
    ) -> None:
        self._admission = admission
        self._costs = list(costs)
        self.footprint = footprint
        """Sentences this request may have queued at once."""
        self.background = background
        """Background work (transcription): it waits behind speech, never ahead of it."""
        self.due = due
        """When the scheduler first needs it (None: ahead of every later request)."""
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
        self._admission._open.discard(self)
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
        stretch: float = WHOLE_STRETCH,
        max_overtake: float = MAX_OVERTAKE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``lanes``: inference runs at once; ``max_wait``: seconds a new request may be
        expected to wait; ``max_queue``: sentences all admitted requests may queue."""
        if lanes < 1:
            raise ValueError(f"Admission needs at least one lane, got {lanes}")
        self.lanes = lanes
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.stretch, self.max_overtake = stretch, max_overtake
        """When whole responses are due, as the synthesizer's schedulers order them."""
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
        self._open: set[Ticket] = set()
        """The admitted speech tickets that have a due time."""

    def wait(self, *, background: bool = False, due: float | None = None) -> float:
        """Estimated seconds before a request arriving now starts being served.

        Speech waits for the speech admitted before it: background work keeps at most its
        share of the lanes while speech waits (voxserve.lanes). With ``due`` (when the new
        request is first needed), only the speech due no later than that counts. Background
        work waits for everything.
        """
        if background:
            work = self.work
        elif due is None:
            work = self.work - self.background_work
        else:
            later = sum(t.remaining for t in self._open if t.due is not None and t.due > due)
            work = self.work - self.background_work - later
        return max(0.0, work) / self.rate

    def check(
        self, footprint: int = 0, *, background: bool = False, due: float | None = None
    ) -> float:
        """The estimated wait, if a request of ``footprint`` queued sentences, first
        needed at ``due``, fits now.

        With ``footprint`` 0 and ``due`` now it tells whether any request could be
        admitted: the server refuses with it before parsing or planning anything, the
        cheapest 503 there is.

        Raises:
            Overloaded: the estimated wait is over ``max_wait``, or ``footprint`` does not
                fit in the queue; ``retry_after`` is set.
        """
        wait = self.wait(background=background, due=due)
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

    def precheck(self, *, background: bool = False) -> None:
        """Refuse (raise Overloaded) if no request arriving now could be admitted: the
        work due by now, which runs before any new request, is already over the bound."""
        self.check(background=background, due=None if background else self._clock())

    def admit_speech(self, costs: Sequence[float], footprint: int, *, whole: bool) -> Ticket:
        """Admit a synthesis arriving now, due as the scheduler will order it: a whole
        response (``whole``, deferred by ``max_wait`` as the responder defers it) or a
        stream; or raise Overloaded."""
        defer = self.max_wait if whole else 0.0
        due = first_due(
            costs, whole=whole, start=self._clock(), defer=defer, stretch=self.stretch,
            max_overtake=self.max_overtake,
        )  # fmt: skip
        return self.admit(costs, footprint, due=due)

    def admit(
        self,
        costs: Sequence[float],
        footprint: int,
        *,
        background: bool = False,
        due: float | None = None,
    ) -> Ticket:
        """Admit a request of per-sentence (or per-window) ``costs`` in inference seconds,
        or raise Overloaded (see :meth:`check`)."""
        self.check(footprint, background=background, due=due)
        ticket = Ticket(self, costs, footprint, background=background, due=due)
        if due is not None and not background:
            self._open.add(ticket)
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
