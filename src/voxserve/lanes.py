"""The machine's inference lanes, shared by speech synthesis and speech recognition.

On a CPU one inference per core, each on one thread, gets more work out of the machine
than one inference on every core (measured on 2 cores: 1.12 to 1.35 x), so the usable
cores are lanes: every inference run holds one (a synthesis that runs alone may hold them
all, :meth:`Lanes.take_rest`).

Two kinds of work wait for them:

- **speech** (synthesis): someone is listening, or waiting for the file;
- **background** (transcription of an upload): long runs of work that no one hears.

Within a kind, waiters are served first come first served. Between kinds, neither may
starve the other: while both wait, transcription keeps at most half of the lanes (one
at least) and speech gets the rest; with a single lane they take turns. So a burst of
long uploads delays a speech request's first audio by at most one transcription step,
and a stream of speech requests still leaves transcription its share.

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


def yield_to_loop() -> None:
    """Run this inference thread at a lower CPU priority than the rest of the process
    (the initializer of every inference thread pool)."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), INFERENCE_NICENESS)


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
        self._last_background = False
        """Whether the last lane handed out while both kinds waited went to background."""

    @property
    def free(self) -> int:
        return self._free

    @property
    def background_share(self) -> int:
        """Lanes background work keeps while speech waits too."""
        return max(1, self.total // 2)

    async def take(self, *, background: bool = False) -> None:
        """Wait for a lane and hold it until :meth:`give` (with the same ``background``)."""
        if self._free and not self._speech and not self._background:
            self._grant(background)
            return
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

    def take_rest(self) -> int:
        """Take every other lane if all are free and nobody waits; how many were taken.

        For speech only: the caller holds one lane already.
        """
        if self._free != self.total - 1 or self._speech or self._background:
            return 0
        self._free = 0
        return self.total - 1

    def give(self, count: int = 1, *, background: bool = False) -> None:
        """Return ``count`` lanes taken with the same ``background``."""
        self._free += count
        if background:
            self._background_held -= count
        while self._free:
            waiters = self._next()
            if waiters is None:
                return
            waiter = waiters.popleft()
            if not waiter.done():
                self._grant(waiters is self._background)
                waiter.set_result(None)

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

    def take_rest(self) -> int:
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
