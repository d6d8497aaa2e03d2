"""When each sentence of a request is needed: the due times the scheduler orders work by.

- a stream's first sentence is due when it could at best be ready: the request's arrival
  plus its estimated inference time.
- every sentence of a whole (non-streamed) response is due at the request's arrival plus
  :data:`WHOLE_STRETCH` times its estimated inference time, at most
  :data:`MAX_OVERTAKE_S` (plus the ``defer`` the server gives streams' first sentences).
  Under sustained load that is nearly shortest first: a short reply overtakes the
  paragraphs and articles queued before it, which lowers the median, and no request is
  overtaken by shorter ones for more than MAX_OVERTAKE_S: whatever arrives once a request
  is due is due after it, so none starves.
  Measured with 16 clients back to back (benchmarks/bench_load.py ``--pattern
  sustained``), plain due order (a stretch of 1) ran nearly first come first served, and
  its median latency trailed Piper's own server's. A model of that loop
  (benchmarks/model_sustained.py) puts the median at 7.4-7.9 s with a stretch of 1 and
  0.2-0.6 s with these defaults, for a p95 of 32-34 s instead of 15-17 s: the mean is
  set by the throughput and no order moves it, so the settings
  VOXSERVE_SCHEDULE_STRETCH and VOXSERVE_SCHEDULE_MAX_OVERTAKE_SECONDS choose between
  the median and the tail. docs/performance.md has the measured figures.

The estimates come from :class:`Pace`, which follows what the engine actually does.
"""

from __future__ import annotations

from collections.abc import Sequence

#: How much longer than it could at best take a whole response may wait so that shorter
#: ones go first: its due time is its arrival plus this many times its inference time...
WHOLE_STRETCH = 64.0
#: ... but never more than this many seconds.
MAX_OVERTAKE_S = 60.0


def first_due(
    costs: Sequence[float],
    *,
    whole: bool,
    start: float,
    defer: float = 0.0,
    stretch: float = WHOLE_STRETCH,
    max_overtake: float = MAX_OVERTAKE_S,
) -> float:
    """When a request of per-sentence inference ``costs`` arriving at ``start`` first needs
    the scheduler: every sentence of a whole response, or a stream's first sentence.
    ``stretch`` and ``max_overtake``: VOXSERVE_SCHEDULE_STRETCH and
    VOXSERVE_SCHEDULE_MAX_OVERTAKE_SECONDS.

    Admission uses it to count only the work that will run before a new request.
    """
    if whole:
        return start + defer + min(stretch * sum(costs), max_overtake)
    return start + (costs[0] if costs else 0.0)


class Pace:
    """Running estimates of one engine's speed, from which due times are computed.

    They start at typical figures for a Piper voice on a CPU and follow what the engine
    actually does (an exponentially weighted mean over recent batches).
    """

    #: Weight of the newest batch in the running means.
    WEIGHT = 0.2

    def __init__(self, audio_per_char: float = 0.06, real_time_factor: float = 0.05) -> None:
        self.audio_per_char = audio_per_char
        """Seconds of audio per character of text, at speed 1."""
        self.real_time_factor = real_time_factor
        """Inference seconds per second of audio."""

    def audio_seconds(self, chars: int, speed: float = 1.0) -> float:
        """Expected audio duration of ``chars`` characters spoken at ``speed``."""
        return chars * self.audio_per_char / speed

    def inference_seconds(self, chars: int, speed: float = 1.0) -> float:
        """Expected inference time for ``chars`` characters spoken at ``speed``."""
        return self.audio_seconds(chars, speed) * self.real_time_factor

    def observe(self, chars: int, audio_at_speed_1: float, elapsed: float) -> None:
        """Fold in one batch: its characters, its audio scaled to speed 1, its run time."""
        if chars <= 0 or audio_at_speed_1 <= 0:
            return
        w = self.WEIGHT
        self.audio_per_char += w * (audio_at_speed_1 / chars - self.audio_per_char)
        self.real_time_factor += w * (elapsed / audio_at_speed_1 - self.real_time_factor)


class DueTimes:
    """When each sentence of one request is needed: the ``due`` of Scheduler.submit.

    A whole response is due, every sentence of it, at :func:`first_due`. A
    stream's sentence (or the rest of one whose head was sent) is due when the listener's
    playback reaches it; the playhead starts at the expected first audio and follows what
    was actually sent (:meth:`sent`).
    """

    def __init__(
        self,
        sentences: Sequence[str],
        pace: Pace,
        *,
        speed: float = 1.0,
        pause: float = 0.0,
        whole: bool,
        start: float,
        defer: float = 0.0,
        stretch: float = WHOLE_STRETCH,
        max_overtake: float = MAX_OVERTAKE_S,
    ) -> None:
        """``pause``: the silence after each sentence but the last; ``start``: arrival;
        ``defer``: for a whole response, how much later it is due: streams' first
        sentences that arrive up to that long after it go first. Among whole responses the
        order is unchanged."""
        self.whole = whole
        self._expected = [pace.audio_seconds(len(s), speed) + pause for s in sentences]
        inference = [pace.inference_seconds(len(s), speed) for s in sentences]
        self._whole_due = first_due(
            inference, whole=True, start=start, defer=defer, stretch=stretch,
            max_overtake=max_overtake,
        )  # fmt: skip
        self._playhead = first_due(inference, whole=False, start=start)
        """When the sentence after the last one sent starts playing."""
        self._next = 0
        """That sentence's index."""
        self._playing = False
        """Whether any audio was sent yet."""

    def due(self, index: int) -> float:
        if self.whole:
            return self._whole_due
        return self._playhead + sum(self._expected[self._next : index])

    def read_ahead(self, index: int) -> bool:
        """True for a stream's sentences after the first: queued before they are needed."""
        return not self.whole and index > 0

    def sent(self, index: int, duration: float, now: float, *, complete: bool = True) -> float:
        """Audio of sentence ``index`` (``duration`` seconds; its start only, unless
        ``complete``) reached the client at ``now``.

        Returns how long the listener had been waiting for it: 0 when it was in time, and
        for the stream's first audio, whose wait is the time to first audio.
        """
        starts = max(self._playhead, now) if self._playing else now
        gap = starts - self._playhead if self._playing else 0.0
        self._playing = True
        self._playhead = starts + duration
        if complete:
            self._next = index + 1
        else:  # the rest of the sentence is what plays next
            self._expected[index] = max(0.0, self._expected[index] - duration)
        return gap
