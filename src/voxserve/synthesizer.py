"""The synthesis pipeline: text in, encoded audio out, whole or sentence by sentence.

::

    request ─► plan (validate, normalize, split) ─► per sentence: engine.prepare
            ─► inference (direct, or through the Scheduler when async)
            ─► volume, sentence silence, resampling ─► AudioChunk ─► encoder

The synchronous methods (:meth:`Synthesizer.synthesize`, :meth:`Synthesizer.stream`) call
the engine on the caller's thread, one sentence at a time on every core: that is the
library and the CLI. The async ones (:meth:`Synthesizer.asynthesize`,
:meth:`Synthesizer.astream`) go through one :class:`~voxserve.scheduler.Scheduler` per
engine, all sharing the machine's inference lanes: that is the HTTP server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import math
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from voxserve.audio import (
    FileEncoder,
    Resampler,
    StreamEncoder,
    output_sample_rate,
)
from voxserve.configs import SynthesisConfig
from voxserve.deadlines import Pace
from voxserve.engines.base import Engine
from voxserve.engines.voices import VoiceLibrary
from voxserve.lanes import Lanes, yield_to_loop, yield_to_speech
from voxserve.metrics import Metrics
from voxserve.plan import Plan
from voxserve.planner import Planner
from voxserve.scheduler import Scheduler
from voxserve.sentences import (
    STREAM_LOOKAHEAD,
    JoinedParts,
    SentenceStream,
    WordClock,
    finish_chunk,
)
from voxserve.text.lexicon import Lexicon
from voxserve.types import (
    Audio,
    AudioChunk,
    SynthesisRequest,
    Voice,
    WordTiming,
)

if TYPE_CHECKING:
    from voxserve.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How far off :meth:`Synthesizer.awarm_lanes` is due: behind any request that arrives.
WARM_LANES_DUE_S = 60.0


class Synthesizer:
    """Speaks text with the installed voices. Build once, share, ``close()`` at the end."""

    def __init__(
        self, library: VoiceLibrary, config: SynthesisConfig, *, metrics: Metrics | None = None
    ) -> None:
        self.library = library
        self.config = config
        self.metrics = metrics if metrics is not None else Metrics()
        """Where the schedulers and streams report (a private registry unless given)."""
        # The machine's inference lanes, shared by every voice's scheduler, and a thread
        # for each.
        lanes = config.lanes
        self.lanes = Lanes(lanes)
        self._executor = ThreadPoolExecutor(
            max_workers=lanes, thread_name_prefix="voxserve-infer", initializer=yield_to_loop
        )
        self._background_executor = ThreadPoolExecutor(
            max_workers=lanes, thread_name_prefix="voxserve-job", initializer=yield_to_speech
        )
        self._schedulers: dict[str, Scheduler] = {}
        self._sync_lock = threading.Lock()
        self.planner = Planner(library, config)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, metrics: Metrics | None = None
    ) -> Synthesizer:
        """Discover voices per ``settings`` (default: the environment) and build."""
        if settings is None:
            from voxserve.settings import Settings  # the edge: the environment

            settings = Settings.load()
        config = SynthesisConfig.from_settings(settings)
        return cls(VoiceLibrary.from_settings(settings), config, metrics=metrics)

    def voices(self) -> list[Voice]:
        return self.library.voices()

    async def apreload(self, *, lanes_later: bool = False) -> list[Engine]:
        """Load the voices ``VOXSERVE_PRELOAD`` asks for on an inference thread, so that
        the sessions' own threads inherit its lower priority (INFERENCE_NICENESS).
        ``lanes_later``: see :meth:`VoiceLibrary.preload`; then call :meth:`aopen_lanes`."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(self.library.preload, lanes_later=lanes_later)
        )

    async def aopen_lanes(self) -> list[Engine]:
        """Open the lanes that :meth:`apreload` left for later, on an inference thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self.library.open_lanes
        )

    # -- planning ---------------------------------------------------------------------

    @property
    def lexicon(self) -> Lexicon:
        """The pronunciation lexicon plans are made with (VOXSERVE_LEXICON)."""
        return self.planner.lexicon

    def plan(self, request: SynthesisRequest, *, max_chars: int | None = None) -> Plan:
        """Validate ``request`` and split its text (:meth:`Planner.plan`)."""
        return self.planner.plan(request, max_chars=max_chars)

    def reload_lexicon(self) -> Lexicon:
        """Read the VOXSERVE_LEXICON files again (:meth:`Planner.reload_lexicon`)."""
        return self.planner.reload_lexicon()

    def estimate(self, plan: Plan) -> tuple[float, ...]:
        """Estimated inference seconds of each sentence of ``plan``, at the pace the voice's
        scheduler has learned (typical figures before its first run)."""
        sched = self._schedulers.get(plan.voice.id)
        pace = sched.pace if sched is not None else Pace()
        speed = plan.params.speed
        return tuple(pace.inference_seconds(len(s), speed) for s in plan.sentences)

    @staticmethod
    def footprint(plan: Plan) -> int:
        """The most sentences ``plan`` has queued in the scheduler at once."""
        return min(len(plan.sentences), STREAM_LOOKAHEAD + 1)

    # -- the shared per-sentence steps ---------------------------------------------------

    # -- synchronous: library and CLI --------------------------------------------------------

    def stream(
        self, request: SynthesisRequest, *, max_chars: int | None = None
    ) -> Iterator[AudioChunk]:
        """Yield one AudioChunk per sentence as each is synthesized."""
        plan = self.plan(request, max_chars=max_chars)
        yield from self.stream_plan(plan)

    def stream_plan(self, plan: Plan) -> Iterator[AudioChunk]:
        if plan.parts:  # one voice after another (SSML <voice>)
            joined = JoinedParts(plan)
            for part in joined.parts():
                yield from map(joined.chunk, self.stream_plan(part))
            return
        engine = self.library.engine(plan.voice)
        resampler = Resampler(engine.sample_rate, plan.output_rate)
        clock = WordClock(plan, engine.sample_rate) if plan.words else None
        for index in range(len(plan.sentences)):
            utterances = engine.prepare(plan.sentences[index], plan.params_at(index))
            words: tuple[WordTiming, ...] = ()
            with self._sync_lock:
                if clock is None:
                    pieces = engine.infer(utterances, exclusive=True) if utterances else []
                else:  # whole heads: the audio with its word timings
                    heads = engine.infer_head(utterances, math.inf, exclusive=True)
                    pieces = [head.audio for head in heads]
            if clock is not None:
                words = clock.words(index, heads)
                clock.advance(index, sum(len(p) for p in pieces))
            yield finish_chunk(plan, index, pieces, resampler, engine.sample_rate, words=words)

    def stream_encoded(self, request: SynthesisRequest) -> Iterator[bytes]:
        """Yield encoded bytes of ``request.format`` as sentences are synthesized."""
        plan = self.plan(request)
        encoder = StreamEncoder(plan.format, plan.output_rate)
        for chunk in self.stream_plan(plan):
            data = encoder.feed(chunk.samples)
            if data:
                yield data
        tail = encoder.finish()
        if tail:
            yield tail

    def synthesize(self, request: SynthesisRequest) -> Audio:
        """Synthesize the whole request and return it encoded."""
        plan = self.plan(request)
        return self.encode_chunks(plan, list(self.stream_plan(plan)))

    def encode_chunks(self, plan: Plan, chunks: list[AudioChunk]) -> Audio:
        """Encode the chunks of a plan into one whole file, as the server's whole
        responses are (audio.FileEncoder): the same bytes for the same audio."""
        buffer = io.BytesIO()
        encoder = FileEncoder(plan.format, plan.output_rate, buffer)
        try:
            for chunk in chunks:
                encoder.feed(chunk.samples)
            encoder.finish()
        finally:
            encoder.close()
        samples = sum(len(c.samples) for c in chunks)
        return Audio(
            data=buffer.getvalue(),
            format=plan.format.name,
            content_type=plan.format.content_type,
            sample_rate=output_sample_rate(plan.format, plan.output_rate),
            duration=samples / plan.output_rate,
            sentences=len(chunks),
        )

    # -- asynchronous: the HTTP server --------------------------------------------------------

    def scheduler(self, engine: Engine) -> Scheduler:
        """The scheduler for ``engine``, created on first use (in the running loop).

        Schedulers of engines the library has unloaded retire once their queue is empty,
        so an evicted voice's model can be freed.
        """
        self._prune_schedulers()
        sched = self._schedulers.get(engine.voice.id)
        if sched is None or sched.engine is not engine:
            sched = Scheduler(
                engine,
                self._executor,
                lanes=self.lanes,
                # Where a batch runs item by item (Piper on CPU), batching would only make
                # every sentence of the batch wait for the slowest one.
                batch_size=self.config.batch_size if engine.batching else 1,
                max_wait_ms=self.config.batch_max_wait_ms,
                # Never below one request's footprint, so admission can always keep it.
                max_queue=max(self.config.max_queue, STREAM_LOOKAHEAD + 1),
                metrics=self.metrics,
            )
            self._schedulers[engine.voice.id] = sched
            self.metrics.add_voice(engine.voice.id)
        return sched

    def _prune_schedulers(self) -> None:
        loaded = {id(e) for e in self.library.loaded()}
        for voice_id, sched in list(self._schedulers.items()):
            if id(sched.engine) not in loaded:
                del self._schedulers[voice_id]
                sched.retire()

    def schedulers(self) -> list[Scheduler]:
        return list(self._schedulers.values())

    async def astream(
        self, plan: Plan, *, whole: bool = False, defer: float = 0.0
    ) -> AsyncGenerator[AudioChunk, None]:
        """Yield chunks of a planned request; inference goes through the scheduler.

        Up to STREAM_LOOKAHEAD sentences are queued ahead of the one being yielded (for a
        stream, from its second sentence on), so the model keeps working while the caller
        encodes and sends. Each is due when playback will reach it, or, with ``whole``
        (the caller collects every chunk before it sends anything), when the whole request
        could at best be done (deadlines.DueTimes).

        A stream's first sentence comes in two chunks where the engine can split it: its
        first ``VOXSERVE_STREAM_HEAD_SECONDS`` (complete=False), then the rest, made while
        the head plays. If the caller stops (a client hung up), the queued work is
        cancelled before it reaches the model.

        ``defer``: with ``whole``, how much later the request is due than it could at best
        be done, so that streams arriving meanwhile start speaking first
        (deadlines.DueTimes).
        """
        if plan.parts:  # one voice after another (SSML <voice>)
            joined = JoinedParts(plan)
            for part in joined.parts():
                async with contextlib.aclosing(self.astream(part, whole=whole, defer=defer)) as it:
                    async for chunk in it:
                        yield joined.chunk(chunk)
            return
        loop = asyncio.get_running_loop()
        engine = await loop.run_in_executor(None, self.library.engine, plan.voice)
        stream = SentenceStream(
            engine, self.scheduler(engine), plan, self.metrics,
            whole=whole, defer=defer,
            head_seconds=0.0 if whole else self.config.stream_head_seconds,
            stretch=self.config.schedule_stretch,
            max_overtake=self.config.schedule_max_overtake_seconds,
        )  # fmt: skip
        try:
            async for chunk in stream.chunks():
                yield chunk
        finally:
            stream.cancel()

    async def awarm_lanes(self, engines: Sequence[Engine], text: str) -> None:
        """Run ``text``'s first sentence once on a lane of each engine, through its
        scheduler: it warms the lanes' sessions (onnxruntime's first run of a session is
        slow) as read-ahead due in a minute, so every request queued meanwhile goes first
        and it never takes every core."""
        waits = []
        for engine in engines:
            plan = self.plan(SynthesisRequest(text, voice=engine.voice.id, format="wav"))
            utterances = engine.prepare(plan.sentences[0], plan.params)
            due = time.monotonic() + WARM_LANES_DUE_S
            waits += self.scheduler(engine).submit(utterances, due=due, read_ahead=True)
        await asyncio.gather(*waits)

    async def asynthesize(self, plan: Plan) -> Audio:
        """Synthesize a planned request through the scheduler and encode it whole."""
        chunks = [chunk async for chunk in self.astream(plan, whole=True)]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.encode_chunks, plan, chunks)

    async def on_background_lane(self, work: Callable[[], T]) -> T:
        """Run ``work`` (one-lane inference) holding a *background* lane that yields its
        core: long-form jobs, which speech keeps priority over (voxserve.lanes). It runs on
        a thread of its own pool, at BACKGROUND_NICENESS.

        Cancelled while it runs, the lane is given back only when the thread is done.
        """
        await self.lanes.take(background=True, yielding=True)
        running = asyncio.get_running_loop().run_in_executor(self._background_executor, work)

        def finished(done: asyncio.Future[T]) -> None:
            self.lanes.give(background=True, yielding=True)
            if not done.cancelled():
                done.exception()  # retrieved here too: its caller may have gone

        running.add_done_callback(finished)
        return await asyncio.shield(running)

    async def aclose(self) -> None:
        """Stop the schedulers, then release everything."""
        for sched in self._schedulers.values():
            await sched.stop()
        self._schedulers.clear()
        self.close()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._background_executor.shutdown(wait=True, cancel_futures=True)
        self.library.close()
