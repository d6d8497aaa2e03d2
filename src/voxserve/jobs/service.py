"""Long-form jobs: a text of any length cut into chunks, synthesized in the machine's idle
time, assembled into one file in object storage.

::

    submit ─► plan the whole text once (normalize, split into sentences)
           ─► chunks of whole sentences (jobs_chunk_chars) ─► ChunkQueue
    worker ─► admission (a background ticket) ─► each sentence on a background lane
           ─► the chunk's PCM (engine rate, sentence silence included) ─► storage
    last chunk ─► assemble in order: one resampler and one encoder over all chunks
                  ─► jobs/<id>/<id>.<ext> in storage ─► a download URL

Because chunks hold whole sentences of one plan and carry the plan's sentence silence,
and the resampler and encoder run once over their concatenation, the result is the same
audio as one synthesis of the whole text: no clicks or gaps at the joins.

Interactive speech keeps priority: chunk sentences take background lanes that yield
their core (speech keeps at least half the lanes while both wait, runs on every core
beside a sentence, and borrows a lane when sentences hold them all: voxserve.lanes), and
each chunk is admitted as background work, waiting (never refused) while speech keeps
the machine busy. A store that is down makes chunks wait and retry; speech does not use
the store.

Chunks go through a :class:`ChunkQueue`: :class:`LocalQueue` runs them in this process.
With a Redis URL, :class:`voxserve.jobs.distributed.DistributedJobService` keeps jobs in
Redis and lets every replica take their chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from voxserve.admission import Admission, Ticket
from voxserve.audio import FileEncoder, Resampler
from voxserve.engines.base import lanes_deferred
from voxserve.errors import (
    ObjectMissing,
    Overloaded,
    StorageError,
    StorageUnavailable,
    UnknownJob,
)
from voxserve.jobs.job import FINAL, ChunkQueue, ChunkTask, Job, LocalQueue, chunk_key
from voxserve.jobs.outputs import (
    TIMESTAMP_FILES,
    ChunkTiming,
    JobOutputs,
    Timeline,
    timeline,
    timestamps_file,
)
from voxserve.jobs.text import chunk_sentences
from voxserve.plan import Plan
from voxserve.sentences import WordClock, finish_chunk
from voxserve.storage import Storage
from voxserve.synthesizer import Synthesizer
from voxserve.types import WordTiming

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest pause between retries of a store that is down, in seconds.
MAX_BACKOFF = 5.0


class JobService:
    """Takes jobs, runs their chunks with ``workers`` tasks, keeps their state.

    Build it in the app's lifespan, ``start()`` it, ``await aclose()`` at the end.
    """

    def __init__(
        self,
        synth: Synthesizer,
        storage: Storage,
        admission: Admission,
        *,
        chunk_chars: int,
        workers: int,
        url_seconds: float,
        queue: ChunkQueue | None = None,
    ) -> None:
        self.synth = synth
        self.storage = storage
        self.admission = admission
        self.chunk_chars = chunk_chars
        self.url_seconds = url_seconds
        self.queue: ChunkQueue = queue if queue is not None else LocalQueue()
        self.jobs: dict[str, Job] = {}
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._assembling: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._work(), name=f"jobs-worker-{n}") for n in range(self._workers)
        ]

    async def aclose(self) -> None:
        for task in [*self._tasks, *self._assembling]:
            task.cancel()
        for job in self.jobs.values():
            for task in job.running:
                task.cancel()
        await asyncio.gather(*self._tasks, *self._assembling, return_exceptions=True)
        self.storage.close()

    # -- the API -----------------------------------------------------------------------

    async def new_job(self, plan: Plan, owner: str, outputs: JobOutputs | None = None) -> Job:
        """A job of ``owner``'s for a planned text, cut into chunks; not yet queued."""
        loop = asyncio.get_running_loop()
        engine = await loop.run_in_executor(None, self.synth.library.engine, plan.voice)
        return Job(
            id=f"job_{secrets.token_hex(12)}",
            owner=owner,
            plan=plan,
            chunks=chunk_sentences(plan.sentences, self.chunk_chars),
            engine_rate=engine.sample_rate,
            outputs=outputs or JobOutputs(),
        )

    async def submit(self, plan: Plan, owner: str, outputs: JobOutputs | None = None) -> Job:
        """Queue a planned text as a job of ``owner``'s, with ``outputs`` beside its audio."""
        job = await self.new_job(plan, owner, outputs)
        self.jobs[job.id] = job
        for index in range(len(job.chunks)):
            await self.queue.put(ChunkTask(job.id, index))
        log.info(
            "job %s queued: %d characters in %d chunks, voice %s, %s",
            job.id, job.chars_total, len(job.chunks), plan.voice.id, plan.format.name,
        )  # fmt: skip
        return job

    def get(self, job_id: str, owner: str) -> Job:
        """The job, if ``owner`` made it; UnknownJob otherwise (the same for both)."""
        job = self.jobs.get(job_id)
        if job is None or job.owner != owner:
            raise UnknownJob(job_id)
        return job

    async def lookup(self, job_id: str, owner: str) -> Job:
        """:meth:`get` for the routes (a distributed service reads the job from Redis)."""
        return self.get(job_id, owner)

    async def cancel(self, job_id: str, owner: str) -> Job:
        """Stop the job's chunks (those running stop after their current sentence) and
        delete what it stored."""
        job = self.get(job_id, owner)
        if job.status in FINAL:
            return job
        job.status, job.finished_at = "cancelled", time.time()
        for task in job.running:
            task.cancel()
        job.touch()
        log.info("job %s cancelled", job.id)
        with contextlib.suppress(StorageError):
            await self.storage.delete_prefix(f"jobs/{job.id}/")
        return job

    async def download_url(self, job: Job) -> str | None:
        if job.status != "succeeded" or job.result_key is None:
            return None
        return await self.storage.download_url(
            job.result_key, seconds=self.url_seconds, filename=job.filename
        )

    async def timestamps_url(self, job: Job) -> str | None:
        """The download URL of the job's captions or words, once it succeeded."""
        if job.status != "succeeded" or job.captions_key is None:
            return None
        filename = job.captions_key.rsplit("/", maxsplit=1)[-1]
        return await self.storage.download_url(
            job.captions_key, seconds=self.url_seconds, filename=filename
        )

    async def events(self, job: Job) -> AsyncIterator[Job]:
        """The job at once, then at every change, until it ends."""
        while True:
            changed = job.changed
            yield job
            if job.status in FINAL:
                return
            await changed.wait()

    # -- workers -----------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            task = await self.queue.get()
            try:
                job = self.jobs.get(task.job_id)
                if job is None or job.status in FINAL or task.index in job.done:
                    continue
                running = asyncio.get_running_loop().create_task(self._chunk(job, task.index))
                job.running.add(running)
                try:
                    await running
                except asyncio.CancelledError:
                    if not running.cancelled():
                        raise  # this worker is stopping
                    continue  # the job was cancelled
                except Exception as exc:
                    log.exception("job %s failed in chunk %d", job.id, task.index)
                    self._fail(job, f"{type(exc).__name__}: {exc}")
                finally:
                    job.running.discard(running)
            finally:
                self.queue.done(task)

    async def _chunk(self, job: Job, index: int) -> None:
        if job.status == "queued":
            job.status, job.started_at = "running", time.time()
            job.touch()
        samples = await self._store_chunk(job, index)
        job.done.add(index)
        job.chars_done += job.chunk_chars(index)
        job.audio_seconds += samples.size / job.engine_rate
        job.touch()
        if len(job.done) == len(job.chunks):
            assembling = asyncio.get_running_loop().create_task(self._assemble(job))
            self._assembling.add(assembling)
            assembling.add_done_callback(self._assembling.discard)

    async def _store_chunk(self, job: Job, index: int) -> np.ndarray:
        """Synthesize chunk ``index`` and store it (its timing first, where the job has
        captions or chapters); returns its samples."""
        samples, timing = await self._synthesize(job, index)
        key = chunk_key(job, index)
        if timing is not None:
            sidecar = timing.dumps()
            await self._retry(
                job, lambda: self.storage.put_bytes(key + ".json", sidecar, "application/json")
            )
        data = samples.astype(np.float32).tobytes()
        await self._retry(job, lambda: self.storage.put_bytes(key, data, "audio/L32"))
        return samples

    async def _synthesize(self, job: Job, index: int) -> tuple[np.ndarray, ChunkTiming | None]:
        """The chunk's audio at the engine's rate: each sentence on a background lane; and
        its timing where the job needs it (words: from the whole heads' word times, counted
        from the chunk's start as one synthesis counts them from the response's)."""
        plan = job.plan
        loop = asyncio.get_running_loop()
        engine = await loop.run_in_executor(None, self.synth.library.engine, plan.voice)
        # One sentence per lane needs the lanes' sessions, which a server that just started
        # may not have opened yet (server.app.after_ready waits for a quiet moment): until
        # then a job would run on the sessions of every core, beside speech's runs.
        if lanes_deferred(engine):
            await self.synth.aopen_lanes()
        sentences = job.chunks[index]
        costs = self.synth.estimate(plan)[sentences.start : sentences.stop]
        ticket = await self._admit(costs)
        identity = Resampler(engine.sample_rate, engine.sample_rate)
        clock = WordClock(plan, engine.sample_rate) if job.outputs.timestamps else None
        pieces: list[np.ndarray] = []
        starts: list[int] = []
        words: list[tuple[WordTiming, ...]] = []
        at = 0
        try:
            for n, i in enumerate(sentences):

                def work(i: int = i) -> tuple[list[np.ndarray], tuple[WordTiming, ...]]:
                    utterances = engine.prepare(plan.sentences[i], plan.params_at(i))
                    if clock is None:
                        return (engine.infer(utterances) if utterances else []), ()
                    heads = engine.infer_head(utterances, math.inf) if utterances else []
                    audio = [head.audio for head in heads]
                    timed = clock.words(i, heads)
                    clock.advance(i, sum(len(a) for a in audio))
                    return audio, timed

                audio, timed = await self.synth.on_background_lane(work)
                piece = finish_chunk(plan, i, audio, identity, engine.sample_rate).samples
                pieces.append(piece)
                starts.append(at)
                words.append(timed)
                at += piece.size
                ticket.done(n)
        finally:
            ticket.close()
        samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        if not job.outputs.timed:
            return samples, None
        return samples, ChunkTiming(at, tuple(starts), tuple(words) if clock else ())

    async def _admit(self, costs: tuple[float, ...]) -> Ticket:
        """A background ticket for the chunk, waiting while the machine is too busy."""
        while True:
            try:
                return self.admission.admit(costs, 1, background=True)
            except Overloaded as exc:
                await asyncio.sleep(min(MAX_BACKOFF, max(0.1, exc.retry_after)))

    async def _assemble(self, job: Job) -> None:
        """Every chunk, in order, through one resampler and one encoder, into storage."""
        plan = job.plan
        resampler = Resampler(job.engine_rate, plan.output_rate)
        samples = 0
        try:
            times = await self._timeline(job) if job.outputs.timed else None
            chapters = [(c.title, c.start, c.end) for c in times.chapters] if times else []
            with tempfile.TemporaryDirectory(prefix="voxserve-job-") as tmp:
                path = Path(tmp) / job.filename
                with path.open("wb") as out:
                    encoder = FileEncoder(plan.format, plan.output_rate, out, chapters=chapters)
                    try:
                        for index in range(len(job.chunks)):
                            chunk = chunk_key(job, index)
                            data = await self._retry(job, functools.partial(self._get, chunk))
                            pcm = resampler.process(np.frombuffer(data, dtype=np.float32))
                            samples += pcm.size
                            encoder.feed(pcm)
                        tail = resampler.flush()
                        samples += tail.size
                        encoder.feed(tail)
                        encoder.finish()
                    finally:
                        encoder.close()
                key = f"jobs/{job.id}/{job.filename}"
                content_type = plan.format.content_type
                await self._retry(job, lambda: self.storage.put_file(key, path, content_type))
                job.result_bytes = path.stat().st_size
            if times is not None:
                await self._store_timestamps(job, times)
            await self._retry(job, lambda: self._drop_chunks(job))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job %s: assembling its result failed", job.id)
            self._fail(job, f"{type(exc).__name__}: {exc}")
            return
        if job.status in FINAL:  # cancelled meanwhile
            return
        job.result_key = key
        job.duration = samples / plan.output_rate
        job.status, job.finished_at = "succeeded", time.time()
        job.touch()
        log.info(
            "job %s done: %.1f s of audio, %d bytes, in %.1f s",
            job.id, job.duration, job.result_bytes, job.finished_at - job.created_at,
        )  # fmt: skip

    async def _timeline(self, job: Job) -> Timeline:
        """The whole job's chapter and word times, from its chunks' timings."""
        timings = []
        for index in range(len(job.chunks)):
            key = chunk_key(job, index) + ".json"
            timings.append(
                ChunkTiming.loads(await self._retry(job, functools.partial(self._get, key)))
            )
        return timeline(job.outputs, timings, job.engine_rate)

    async def _store_timestamps(self, job: Job, times: Timeline) -> None:
        """The captions (or words) beside the audio; the chapters on the job."""
        job.chapters = times.chapters
        kind = job.outputs.timestamps
        if not kind:
            return
        suffix, content_type = TIMESTAMP_FILES[kind]
        key = f"jobs/{job.id}/{job.id}{suffix}"
        data = timestamps_file(kind, times.words)
        await self._retry(job, lambda: self.storage.put_bytes(key, data, content_type))
        job.captions_key = key

    async def _get(self, key: str) -> bytes:
        return await self.storage.get_bytes(key)

    async def _drop_chunks(self, job: Job) -> None:
        for index in range(len(job.chunks)):
            with contextlib.suppress(ObjectMissing):
                await self.storage.delete_prefix(chunk_key(job, index))

    async def _retry(self, job: Job, operation: Callable[[], Awaitable[T]]) -> T:
        """``operation`` until the store answers; the job says it is waiting meanwhile."""
        backoff = 0.1
        while True:
            try:
                result = await operation()
            except StorageUnavailable as exc:
                if job.waiting is None:
                    log.warning("job %s waits for object storage: %s", job.id, exc)
                    job.waiting = f"object storage unavailable: {exc}"
                    job.touch()
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            if job.waiting is not None:
                log.info("job %s: object storage is back", job.id)
                job.waiting = None
                job.touch()
            return result

    def _fail(self, job: Job, error: str) -> None:
        if job.status in FINAL:
            return
        for task in job.running:
            task.cancel()
        job.status, job.error, job.finished_at = "failed", error, time.time()
        job.touch()
