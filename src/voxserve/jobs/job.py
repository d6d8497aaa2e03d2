"""A job, its chunks, and the queue they wait in (the state :class:`JobService` keeps)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

from voxserve.jobs.outputs import ChapterTime, JobOutputs
from voxserve.plan import Plan

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINAL: frozenset[Status] = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of one job: what a queue carries."""

    job_id: str
    index: int


class ChunkQueue(Protocol):
    """Where chunks wait for a worker. Each chunk is handed out until it is ``done``."""

    async def put(self, task: ChunkTask) -> None: ...

    async def get(self) -> ChunkTask: ...

    def done(self, task: ChunkTask) -> None: ...


class LocalQueue:
    """Chunks queued in this process, first in first out."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[ChunkTask] = asyncio.Queue()

    async def put(self, task: ChunkTask) -> None:
        await self._queue.put(task)

    async def get(self) -> ChunkTask:
        return await self._queue.get()

    def done(self, task: ChunkTask) -> None:
        self._queue.task_done()


@dataclass
class Job:
    """One job and its progress (mutable: the service updates it as chunks finish)."""

    id: str
    owner: str
    """key_id of the API key that made it ("" when the server has no keys)."""
    plan: Plan
    chunks: list[range]
    """Sentence indexes of each chunk."""
    engine_rate: int
    """Sample rate of the stored chunks (the voice's); the result is at plan.output_rate."""
    created_at: float = field(default_factory=time.time)
    status: Status = "queued"
    started_at: float | None = None
    finished_at: float | None = None
    done: set[int] = field(default_factory=set)
    """Chunks synthesized and stored."""
    chars_done: int = 0
    audio_seconds: float = 0.0
    waiting: str | None = None
    """Why the job is not progressing right now (the store is down), or None."""
    error: str | None = None
    result_key: str | None = None
    result_bytes: int = 0
    duration: float = 0.0
    """Seconds of audio in the result."""
    outputs: JobOutputs = field(default_factory=JobOutputs)
    """What the job makes beside its audio: captions, chapters."""
    captions_key: str | None = None
    """Where its captions are in the store, once it succeeded (when asked for)."""
    chapters: tuple[ChapterTime, ...] = ()
    """Its chapters' times, once it succeeded (when asked for)."""
    version: int = 0
    """Bumped at every change; :meth:`JobService.events` waits on it."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    running: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def chars_total(self) -> int:
        return sum(len(s) for s in self.plan.sentences)

    def chunk_chars(self, index: int) -> int:
        return sum(len(self.plan.sentences[i]) for i in self.chunks[index])

    @property
    def filename(self) -> str:
        return f"{self.id}{self.plan.format.extension}"

    def eta(self) -> float | None:
        """Estimated seconds left, from the pace so far; None before the first chunk."""
        if self.status in FINAL or self.started_at is None or not self.chars_done:
            return None if self.status not in FINAL else 0.0
        pace = (time.time() - self.started_at) / self.chars_done
        return pace * (self.chars_total - self.chars_done)

    def touch(self) -> None:
        self.version += 1
        self.changed.set()
        self.changed = asyncio.Event()


def chunk_key(job: Job, index: int) -> str:
    """Where chunk ``index``'s PCM waits in the store (its timing: this + ``.json``)."""
    return f"jobs/{job.id}/chunks/{index:06d}.f32"
