"""A request's sentences on their way to audio chunks.

:func:`finish_chunk` turns a sentence's inferred pieces into its chunk (volume, the pause
after it, resampling), for the synchronous path and the scheduled one alike.
:class:`SentenceStream` is the scheduled path of one request: what it has queued, when
each sentence is due, and the head and rest of a stream's first sentence.
:class:`WordClock` times a sentence's words in the response (``Plan.words``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from voxserve.audio import Resampler, apply_gain
from voxserve.audio import silence as make_silence
from voxserve.deadlines import MAX_OVERTAKE_S, WHOLE_STRETCH, DueTimes
from voxserve.engines.base import Engine, Head
from voxserve.metrics import Metrics
from voxserve.plan import Plan
from voxserve.scheduler import Scheduler
from voxserve.types import AudioChunk, FloatArray, WordTiming
from voxserve.words import align, shift

#: Sentences of one request queued ahead of the one being delivered.
STREAM_LOOKAHEAD = 2


def finish_chunk(
    plan: Plan,
    index: int,
    pieces: list[FloatArray],
    resampler: Resampler,
    rate: int,
    *,
    complete: bool = True,
    words: tuple[WordTiming, ...] = (),
) -> AudioChunk:
    """The chunk of sentence ``index`` (or of its start, when not ``complete``)."""
    samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    samples = apply_gain(samples, plan.params_at(index).volume)
    last = index == len(plan.sentences) - 1
    if complete and plan.pause_after(index) > 0:
        pause = make_silence(plan.pause_after(index), rate)
        samples = np.concatenate([samples, pause])
    samples = resampler.process(samples)
    if complete and last:
        samples = np.concatenate([samples, resampler.flush()])
    return AudioChunk(
        samples=samples,
        sample_rate=plan.output_rate,
        index=index,
        text=plan.sentences[index],
        complete=complete,
        words=words,
    )


class WordClock:
    """Where each sentence of a response starts, to time its words from the response's
    start: counted in the engine's samples (resampling keeps times), each sentence's
    audio and the silence after it."""

    def __init__(self, plan: Plan, rate: int) -> None:
        self._plan = plan
        self._rate = rate
        self._at = 0

    def words(self, index: int, heads: Sequence[Head]) -> tuple[WordTiming, ...]:
        """Sentence ``index``'s written words, from the whole heads of its utterances (all
        but the last whole: only a sentence of one utterance is cut into head and rest)."""
        spoken: list[WordTiming] = []
        offset = 0
        for head in heads:
            spoken.extend(shift(head.words, offset / self._rate))
            offset += len(head.audio)
        return shift(align(self._plan.sentences[index], spoken), self._at / self._rate)

    def advance(self, index: int, samples: int) -> None:
        """Sentence ``index`` took ``samples`` of the engine's audio (its pause aside)."""
        pause = self._plan.pause_after(index)  # as finish_chunk puts it
        self._at += samples + (len(make_silence(pause, self._rate)) if pause > 0 else 0)


class JoinedParts:
    """The chunks of a plan's parts (an SSML document that switches voices) as the whole
    plan's: indexed through the document, their words timed from its start.

    Iterate :meth:`parts`, synthesize each, and pass every chunk through :meth:`chunk`.
    """

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._index = 0
        """Sentences of the parts before this one."""
        self._start = 0.0
        """Where this part starts in the plan's audio, in seconds."""
        self._seconds = 0.0
        """Audio so far, in seconds."""

    def parts(self) -> Iterator[Plan]:
        """Each part, asking for words as the plan does."""
        for part in self._plan.parts:
            self._start = self._seconds
            yield replace(part, words=self._plan.words)
            self._index += len(part.sentences)

    def chunk(self, chunk: AudioChunk) -> AudioChunk:
        """A part's chunk as the plan's (every part has the plan's output rate; a part's
        words are timed from its start)."""
        joined = replace(
            chunk, index=chunk.index + self._index, words=shift(chunk.words, self._start)
        )
        self._seconds += chunk.duration
        return joined


@dataclass
class _Queued:
    """One sentence's work in the scheduler: its utterances' audio, the head of its
    single utterance (a stream's first sentence), or its utterances whole with their word
    timings (``timed``: heads of math.inf seconds)."""

    audio: list[asyncio.Future[FloatArray]] = field(default_factory=list)
    head: asyncio.Future[Head] | None = None
    timed: list[asyncio.Future[Head]] = field(default_factory=list)

    def futures(self) -> list[asyncio.Future[Any]]:
        return [*self.audio, *self.timed, *([self.head] if self.head is not None else [])]


class SentenceStream:
    """One request's sentences on their way through the scheduler, in order.

    It owns what is queued ahead of the sentence being delivered (the read-ahead), when
    each sentence is due (:class:`~voxserve.deadlines.DueTimes`), and the split of a
    stream's first sentence into its head and the rest.
    """

    def __init__(
        self,
        engine: Engine,
        scheduler: Scheduler,
        plan: Plan,
        metrics: Metrics,
        *,
        whole: bool,
        defer: float,
        head_seconds: float,
        stretch: float = WHOLE_STRETCH,
        max_overtake: float = MAX_OVERTAKE_S,
    ) -> None:
        """``whole``: the caller collects every chunk before it sends anything; ``defer``,
        ``stretch`` and ``max_overtake``: when such a request is due (deadlines.first_due);
        ``head_seconds``: how much of the first sentence comes first (0: whole sentences
        only)."""
        self._engine = engine
        self._sched = scheduler
        self._plan = plan
        self._metrics = metrics
        self._whole = whole
        params = plan.params
        self._clock = DueTimes(
            plan.sentences,
            self._sched.pace,
            speed=params.speed,
            pause=params.sentence_silence,
            whole=whole,
            start=time.monotonic(),
            defer=defer,
            stretch=stretch,
            max_overtake=max_overtake,
        )
        self._head_seconds = head_seconds
        self._resampler = Resampler(engine.sample_rate, plan.output_rate)
        self._pending: deque[_Queued] = deque()
        """Sentences queued in the scheduler, the next to deliver first."""
        self._words = WordClock(plan, engine.sample_rate) if plan.words else None

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        """Every sentence's chunk in order (a stream's first may come in two)."""
        for index in range(len(self._plan.sentences)):
            self._queue_ahead(index)
            current = self._pending[0]
            words: tuple[WordTiming, ...] = ()
            if current.head is not None:
                head = await current.head
                words = self._words.words(index, [head]) if self._words else ()
                if head.rest is not None:
                    chunk = self._finish(0, [head.audio], complete=False, words=words)
                    words = ()  # they came with the head
                    self._clock.sent(0, chunk.duration, time.monotonic(), complete=False)
                    # Made while the head plays: due when playback reaches its end.
                    due = self._clock.due(0)
                    self._pending[0] = _Queued(audio=self._sched.submit_rest([head.rest], due=due))
                    yield chunk
                    pieces = [head.audio, *[await f for f in self._pending[0].audio]]
                    chunk = self._finish(index, pieces[1:], words=words)
                else:
                    pieces = [head.audio]
                    chunk = self._finish(index, pieces, words=words)
            elif current.timed:
                heads = [await f for f in current.timed]
                words = self._words.words(index, heads) if self._words else ()
                pieces = [h.audio for h in heads]
                chunk = self._finish(index, pieces, words=words)
            else:
                pieces = [await f for f in current.audio]
                chunk = self._finish(index, pieces)
            self._pending.popleft()
            if self._words is not None:
                self._words.advance(index, sum(len(p) for p in pieces))
            if not self._whole:
                gap = self._clock.sent(index, chunk.duration, time.monotonic())
                if gap > 0:  # the listener heard silence waiting for this sentence
                    voice = self._plan.voice.id
                    self._metrics.stream_late_sentences.labels(voice).inc()
                    self._metrics.stream_gap_seconds.labels(voice).inc(gap)
            yield chunk

    def cancel(self) -> None:
        """Drop whatever is still queued (the caller stopped: its client went)."""
        for queued in self._pending:
            for future in queued.futures():
                future.cancel()
        self._pending.clear()

    def _queue_ahead(self, index: int) -> None:
        """Queue sentences up to the read-ahead. A stream reads ahead only once its first
        audio is out: until then the cores are the first sentence's and its encoder's."""
        wanted = STREAM_LOOKAHEAD + 1 if self._whole or index > 0 else 1
        total = len(self._plan.sentences)
        while len(self._pending) < wanted and index + len(self._pending) < total:
            ahead = index + len(self._pending)
            utterances = self._engine.prepare(
                self._plan.sentences[ahead], self._plan.params_at(ahead)
            )
            due = self._clock.due(ahead)
            if ahead == 0 and self._head_seconds and len(utterances) == 1:
                (head,) = self._sched.submit_head(utterances, self._head_seconds, due=due)
                self._pending.append(_Queued(head=head))
            elif self._words is not None:
                # Whole heads: each utterance's audio with its word timings.
                heads = self._sched.submit_head(utterances, math.inf, due=due)
                self._pending.append(_Queued(timed=heads))
            else:
                read_ahead = self._clock.read_ahead(ahead)
                futures = self._sched.submit(utterances, due=due, read_ahead=read_ahead)
                self._pending.append(_Queued(audio=futures))

    def _finish(
        self,
        index: int,
        pieces: list[FloatArray],
        *,
        complete: bool = True,
        words: tuple[WordTiming, ...] = (),
    ) -> AudioChunk:
        return finish_chunk(
            self._plan, index, pieces, self._resampler, self._engine.sample_rate,
            complete=complete, words=words,
        )  # fmt: skip
