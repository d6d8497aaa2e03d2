"""The machine's inference lanes, shared by speech synthesis and speech recognition.

On a CPU one inference per core, each on one thread, gets more work out of the machine
than one inference on every core (measured on 2 cores: 1.12 to 1.35 x), so the usable
cores are lanes: every inference run holds one (a synthesis that runs alone may hold them
all, :meth:`Lanes.take_rest`).

Two kinds of work wait for them:

- **speech** (synthesis): someone is listening, or waiting for the file;
- **background** (transcription of an upload, a long-form job's sentences): long runs of
  work that no one hears.

Within a kind, waiters are served first come first served. Between kinds, neither may
starve the other: while both wait, transcription keeps at most half of the lanes (one
at least) and speech gets the rest; with a single lane they take turns. So a burst of
long uploads delays a speech request's first audio by at most one transcription step,
and a stream of speech requests still leaves transcription its share.

A job's synthesis *yields* its core: it runs on one thread at :data:`BACKGROUND_NICENESS`.
A speech run that may have every lane then runs on all of them beside it (on every core,
as on an idle machine), and the kernel gives the shared core mostly to speech: first audio
while a job runs stays near the idle figure (docs/performance.md), and the job loses little.
When such work holds every lane (one lane, or ``VOXSERVE_JOBS_WORKERS`` as many as the
lanes), one speech run at a time *borrows* a lane: it starts at once beside the job's
sentences instead of waiting for one to end (the count of free lanes is then -1).
A transcription does not yield (CTranslate2 runs its own threads at the process's priority).

An engine may run fewer inferences at once than the machine has lanes (it has that many
sets of sessions; a GPU voice has one): its scheduler takes lanes through a
:class:`LaneShare`, the one limiter it knows, which keeps to the engine's count and takes
the machine's lanes in their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections import deque

#: Niceness of the inference threads (0 to 19): above the event loop's, so that under
#: overload health checks, refusals and the encoding of streams get a core at once.
INFERENCE_NICENESS = 5
#: Niceness of the threads of yielding background work (a job's synthesis): on a core it
#: shares with speech inference it gets about a tenth of the time (the kernel's weights
#: for nice 15 and nice 5 are 36 and 335).
BACKGROUND_NICENESS = 15


def yield_to_loop() -> None:
    """Run this inference thread at a lower CPU priority than the rest of the process
    (the initializer of every inference thread pool)."""
    _nice(INFERENCE_NICENESS)


def yield_to_speech() -> None:
    """Run this thread of background work at a lower CPU priority than speech inference
    (the initializer of the pool of yielding background work)."""
    _nice(BACKGROUND_NICENESS)


def _nice(niceness: int) -> None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


class Lanes:
    """The inference lanes of the machine (one per usable core)."""

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError(f"Lanes needs at least one lane, got {total}")
        self.total = total
        self._free = total
        self._speech: deque[asyncio.Future[None]] = deque()
        self._background: deque[asyncio.Future[None]] = deque()
        self._background_held = 0
        self._yielding_held = 0
        """Background lanes whose work yields its core (see the module's notes)."""
        self._last_background = False
        """Whether the last lane handed out while both kinds waited went to background."""

    @property
    def free(self) -> int:
        return self._free

    @property
    def background_share(self) -> int:
        """Lanes background work keeps while speech waits too."""
        return max(1, self.total // 2)

    async def take(self, *, background: bool = False, yielding: bool = False) -> None:
        """Wait for a lane and hold it until :meth:`give` (with the same arguments).

        ``yielding``: background work that yields its core (one thread at
        :data:`BACKGROUND_NICENESS`).
        """
        if yielding and not background:
            raise ValueError("only background work yields its lane")
        if self._free > 0 and not self._speech and not self._background:
            self._grant(background)
        elif not background and not self._speech and self._may_borrow():
            self._grant(background)  # free goes to -1 until a lane comes back
        else:
            waiters = self._background if background else self._speech
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiters.append(waiter)
            try:
                await waiter  # give() hands its lane straight to the waiter it picks
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.give(1, background=background)  # handed one as we were cancelled
                else:
                    waiters.remove(waiter)
                raise
        self._yielding_held += yielding

    def take_rest(self) -> int | None:
        """For the speech run that holds one lane: every other free lane, if nobody waits
        and every lane not free is held by background work that yields; how many were
        taken (0 when yielding work holds them all). None: other work keeps the run on
        its one lane.
        """
        if self._speech or self._background:
            return None
        if self._free + self._yielding_held != self.total - 1:
            return None
        taken = max(self._free, 0)  # -1: the run borrows a lane already
        self._free -= taken
        return taken

    def give(self, count: int = 1, *, background: bool = False, yielding: bool = False) -> None:
        """Return ``count`` lanes taken with the same ``background`` and ``yielding``."""
        self._free += count
        if background:
            self._background_held -= count
        if yielding:
            self._yielding_held -= count
        while self._free > 0:
            waiters = self._next()
            if waiters is None:
                return
            waiter = waiters.popleft()
            if not waiter.done():
                self._grant(waiters is self._background)
                waiter.set_result(None)
        while self._speech and self._may_borrow():
            waiter = self._speech.popleft()
            if not waiter.done():
                self._grant(False)
                waiter.set_result(None)

    def _may_borrow(self) -> bool:
        """Whether a speech run may borrow a lane: background work that yields its core
        holds every lane, and no speech run borrows one already."""
        return self._free == 0 and self._yielding_held == self.total

    def _grant(self, background: bool) -> None:
        self._free -= 1
        if background:
            self._background_held += 1

    def _next(self) -> deque[asyncio.Future[None]] | None:
        """The queue the next free lane goes to."""
        if not self._background:
            return self._speech or None
        if not self._speech:
            return self._background
        if self.total == 1:
            background = not self._last_background
        else:
            background = self._background_held < self.background_share
        self._last_background = background
        return self._background if background else self._speech


class LaneShare:
    """One engine's use of the machine's lanes: at most ``cap`` runs at once (its sessions),
    each holding a lane of the shared :class:`Lanes`.

    Waiters for the engine's own capacity are served first come first served; a run that
    got it then waits for a lane like any other speech.
    """

    def __init__(self, lanes: Lanes, cap: int) -> None:
        if cap < 1:
            raise ValueError(f"LaneShare needs a cap of at least one, got {cap}")
        self.lanes = lanes
        self.cap = cap
        self.held = 0
        """Runs of this engine holding (or about to take) a lane."""
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def take(self) -> None:
        """Wait until the engine may run once more and a lane is free; hold both until
        :meth:`give`."""
        if self.held < self.cap and not self._waiters:
            self.held += 1
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # _release hands its place straight to the waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()
                else:
                    self._waiters.remove(waiter)
                raise
        try:
            await self.lanes.take()
        except asyncio.CancelledError:
            self._release()
            raise

    @property
    def total(self) -> int:
        """The machine's lanes (all engines')."""
        return self.lanes.total

    def take_rest(self) -> int | None:
        """Every other lane of the machine for the run that holds one (Lanes.take_rest)."""
        return self.lanes.take_rest()

    def give(self, count: int = 1) -> None:
        """End a run that held ``count`` lanes (1, plus what :meth:`take_rest` gave it)."""
        self.lanes.give(count)
        self._release()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the place passes on: held stays the same
                return
        self.held -= 1
