"""Jobs over replicas: chunks on a Redis stream, job state in Redis, audio in the store.

::

    POST (any replica) ─► job hash + plan in Redis ─► one message per chunk on the stream
    every replica: workers read the stream (consumer group: each message to one replica)
        ─► synthesize on background lanes ─► chunk PCM in the store ─► SADD done ─► ack
        a running chunk's lease is renewed (XCLAIM to itself) every lease/3 seconds;
        a replica killed mid-chunk stops renewing, and after the lease another replica
        claims the message (XAUTOCLAIM) and synthesizes the chunk again
    the chunk that completes the set queues one "assemble" message (also leased)
        ─► every chunk in order through one resampler and one encoder ─► the result
    GET/DELETE (any replica) ─► the job hash; DELETE publishes the cancel to all replicas

The queue is taskiq-redis's :class:`~taskiq_redis.RedisStreamBroker` (Redis streams with
a consumer group and acknowledgements): its connection pool, group declaration, ``kick``
and ``ack``. Its ``listen`` is replaced here for two reasons: it only reclaims a dead
consumer's messages after a new message arrives (so the last chunk of a job, once the
stream is drained, would never be retried), and it hands out messages without their ids
(so a running chunk's lease could not be renewed).

A chunk synthesized twice (a lease that expired while its replica was alive but stalled)
writes the same bytes under the same key, and the done set counts it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from voxserve.admission import Admission
from voxserve.errors import StorageError, UnknownJob
from voxserve.jobs.job import FINAL, Job
from voxserve.jobs.outputs import JobOutputs, chapters_from_json, chapters_json
from voxserve.jobs.service import JobService
from voxserve.plan import Plan
from voxserve.storage import Storage
from voxserve.synthesizer import Synthesizer

log = logging.getLogger(__name__)

PREFIX = "voxserve:jobs:"
STREAM = PREFIX + "chunks"
GROUP = "voxserve"
CANCEL_CHANNEL = PREFIX + "cancel"
ASSEMBLE = -1
#: How long a finished job's state stays in Redis (its result stays in the store).
KEEP_SECONDS = 7 * 86_400


@dataclass(frozen=True)
class Message:
    id: str
    job_id: str
    index: int


class ChunkStream:
    """The chunk queue on a Redis stream, through taskiq-redis's stream broker."""

    def __init__(self, url: str, *, consumer: str, lease_seconds: float) -> None:
        from taskiq_redis import RedisStreamBroker

        self.broker = RedisStreamBroker(
            url, queue_name=STREAM, consumer_group_name=GROUP, consumer_name=consumer,
            consumer_id="0", idle_timeout=int(lease_seconds * 1000), xread_count=1,
        )  # fmt: skip
        self.consumer = consumer
        self.lease_ms = int(lease_seconds * 1000)
        self.redis: Any = Redis(connection_pool=self.broker.connection_pool)

    async def startup(self) -> None:
        await self.broker.startup()

    async def put(self, job_id: str, index: int) -> None:
        from taskiq import BrokerMessage

        body = json.dumps({"job": job_id, "index": index}).encode()
        await self.broker.kick(
            BrokerMessage(task_id="", task_name="chunk", message=body, labels={})
        )

    async def get(self) -> Message:
        """The next chunk for this replica: a new one, else one whose lease expired."""
        while True:
            fetched = await self.redis.xreadgroup(
                GROUP, self.consumer, {STREAM: ">"}, count=1, block=500
            )
            for _stream, messages in fetched or []:
                for msg_id, fields in messages:
                    return self._message(msg_id, fields)
            claimed = await self.redis.xautoclaim(
                STREAM, GROUP, self.consumer, min_idle_time=self.lease_ms, count=1
            )
            for msg_id, fields in claimed[1]:
                if fields:  # None: deleted meanwhile
                    log.info("chunk message %s: its lease expired, taken over", _text(msg_id))
                    return self._message(msg_id, fields)

    def _message(self, msg_id: Any, fields: Any) -> Message:
        body = json.loads(fields[b"data"])
        return Message(_text(msg_id), str(body["job"]), int(body["index"]))

    async def renew(self, message: Message) -> None:
        """Keep the lease: reset the message's idle time (it stays this consumer's)."""
        await self.redis.xclaim(
            STREAM, GROUP, self.consumer, min_idle_time=0, message_ids=[message.id], justid=True
        )

    async def ack(self, message: Message) -> None:
        await self.redis.xack(STREAM, GROUP, message.id)
        await self.redis.xdel(STREAM, message.id)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.broker.shutdown()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class DistributedJobService(JobService):
    """Jobs whose state is in Redis and whose chunks any replica may synthesize."""

    def __init__(
        self,
        synth: Synthesizer,
        storage: Storage,
        admission: Admission,
        *,
        redis_url: str,
        chunk_chars: int,
        workers: int,
        url_seconds: float,
        lease_seconds: float,
        replica: str | None = None,
    ) -> None:
        super().__init__(
            synth, storage, admission,
            chunk_chars=chunk_chars, workers=workers, url_seconds=url_seconds,
        )  # fmt: skip
        self.replica = replica or f"{socket.gethostname()}-{os.getpid()}"
        self.stream = ChunkStream(redis_url, consumer=self.replica, lease_seconds=lease_seconds)
        self.redis: Any = self.stream.redis
        self.lease_seconds = lease_seconds
        self._plans: dict[str, tuple[Plan, list[range], JobOutputs]] = {}
        self.chunks_synthesized = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(), name="jobs-distributed")]

    async def _run(self) -> None:
        await self.stream.startup()
        loop = asyncio.get_running_loop()
        workers = [
            loop.create_task(self._serve(), name=f"jobs-worker-{n}") for n in range(self._workers)
        ]
        workers.append(loop.create_task(self._listen_cancels(), name="jobs-cancels"))
        log.info(
            "jobs: replica %s takes chunks from Redis (%d workers)", self.replica, len(workers) - 1
        )
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def aclose(self) -> None:
        await super().aclose()
        with contextlib.suppress(Exception):
            await self.stream.close()

    # -- state in Redis ----------------------------------------------------------------

    async def submit(self, plan: Plan, owner: str, outputs: JobOutputs | None = None) -> Job:
        job = await self.new_job(plan, owner, outputs)
        self._plans[job.id] = (plan, job.chunks, job.outputs)
        key = PREFIX + job.id
        await self.redis.hset(
            key,
            mapping={
                "owner": owner, "status": "queued", "created_at": job.created_at,
                "engine_rate": job.engine_rate, "chunks_total": len(job.chunks),
                "plan": pickle.dumps((plan, job.chunks, job.outputs)),
            },
        )  # fmt: skip
        await self.redis.expire(key, KEEP_SECONDS)
        for index in range(len(job.chunks)):
            await self.stream.put(job.id, index)
        log.info(
            "job %s queued on Redis: %d characters in %d chunks, voice %s, %s",
            job.id, job.chars_total, len(job.chunks), plan.voice.id, plan.format.name,
        )  # fmt: skip
        loaded = await self._load(job.id)
        assert loaded is not None
        return loaded

    async def lookup(self, job_id: str, owner: str) -> Job:
        job = await self._load(job_id)
        if job is None or job.owner != owner:
            raise UnknownJob(job_id)
        return job

    def get(self, job_id: str, owner: str) -> Job:  # pragma: no cover - routes use lookup
        raise NotImplementedError("use await lookup()")

    async def _load(self, job_id: str) -> Job | None:
        """The job as Redis has it now (None when unknown)."""
        if not job_id.startswith("job_"):
            return None
        key = PREFIX + job_id
        fields, done = await asyncio.gather(
            self.redis.hgetall(key), self.redis.smembers(key + ":done")
        )
        if not fields:
            return None
        f = {k.decode(): v for k, v in fields.items()}
        if job_id not in self._plans:
            self._plans[job_id] = pickle.loads(f["plan"])
        plan, chunks, outputs = self._plans[job_id]
        # A new Job each time: a worker assembling the job sets its result's fields on
        # its own copy, which a status request reading Redis meanwhile must not reset.
        # Only the set of running tasks is shared (a cancel stops them).
        job = Job(
            id=job_id, owner=f["owner"].decode(), plan=plan, chunks=chunks,
            engine_rate=int(f["engine_rate"]), created_at=float(f["created_at"]),
            outputs=outputs,
        )  # fmt: skip
        job.running = self.jobs.setdefault(job_id, job).running
        number = {n: float(f[n]) for n in ("started_at", "finished_at") if n in f}
        job.status = f["status"].decode()
        job.started_at = number.get("started_at")
        job.finished_at = number.get("finished_at")
        job.done = {int(i) for i in done}
        job.chars_done = int(f.get("chars_done", 0))
        job.audio_seconds = float(f.get("audio_seconds", 0))
        job.waiting = f["waiting"].decode() if f.get("waiting") else None
        job.error = f["error"].decode() if f.get("error") else None
        job.result_key = f["result_key"].decode() if f.get("result_key") else None
        job.result_bytes = int(f.get("result_bytes", 0))
        job.duration = float(f.get("duration", 0))
        job.captions_key = f["captions_key"].decode() if f.get("captions_key") else None
        job.chapters = chapters_from_json(json.loads(f["chapters"])) if f.get("chapters") else ()
        return job

    async def cancel(self, job_id: str, owner: str) -> Job:
        job = await self.lookup(job_id, owner)
        if job.status in FINAL:
            return job
        await self.redis.hset(
            PREFIX + job_id, mapping={"status": "cancelled", "finished_at": time.time()}
        )
        await self.redis.publish(CANCEL_CHANNEL, job_id)
        log.info("job %s cancelled", job_id)
        with contextlib.suppress(StorageError):
            await self.storage.delete_prefix(f"jobs/{job_id}/")
        return await self.lookup(job_id, owner)

    async def events(self, job: Job) -> AsyncIterator[Job]:
        """The job at once, then at every change (polled from Redis), until it ends."""
        last: Any = None
        while True:
            current = await self._load(job.id)
            if current is None:
                return
            seen = (current.status, len(current.done), current.waiting, current.result_key)
            if seen != last:
                last = seen
                yield current
            if current.status in FINAL:
                return
            await asyncio.sleep(0.25)

    async def _listen_cancels(self) -> None:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(CANCEL_CHANNEL)
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                job = self.jobs.get(_text(message["data"]))
                if job is not None:
                    job.status = "cancelled"
                    for task in list(job.running):
                        task.cancel()
        finally:
            await pubsub.aclose()

    # -- workers -----------------------------------------------------------------------

    async def _serve(self) -> None:
        while True:
            message = await self.stream.get()
            job = await self._load(message.job_id)
            if job is None or job.status in FINAL or message.index in job.done:
                await self.stream.ack(message)
                continue
            loop = asyncio.get_running_loop()
            if message.index == ASSEMBLE:
                work = loop.create_task(self._assemble_shared(job))
            else:
                work = loop.create_task(self._chunk_shared(job, message.index))
            job.running.add(work)
            lease = loop.create_task(self._keep(message))
            try:
                await work
            except asyncio.CancelledError:
                if not work.cancelled():
                    raise  # stopping: not acknowledged, another replica takes it
            except Exception as exc:
                log.exception("job %s failed in chunk %d", job.id, message.index)
                await self._fail_shared(job, f"{type(exc).__name__}: {exc}")
            finally:
                job.running.discard(work)
                lease.cancel()
            await self.stream.ack(message)

    async def _keep(self, message: Message) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            with contextlib.suppress(Exception):
                await self.stream.renew(message)

    async def _chunk_shared(self, job: Job, index: int) -> None:
        key = PREFIX + job.id
        if job.status == "queued":
            await self.redis.hsetnx(key, "started_at", time.time())
            await self.redis.hset(key, "status", "running")
        samples = await self._store_chunk(job, index)
        if await self._cancelled(job):
            return
        if await self.redis.sadd(key + ":done", index):  # counted once, however often run
            await self.redis.hincrby(key, "chars_done", job.chunk_chars(index))
            await self.redis.hincrbyfloat(key, "audio_seconds", samples.size / job.engine_rate)
            await self.redis.hincrby(key + ":replicas", self.replica, 1)
        self.chunks_synthesized += 1
        log.info("job %s: chunk %d synthesized by replica %s", job.id, index, self.replica)
        done = await self.redis.scard(key + ":done")
        if done == len(job.chunks) and await self.redis.hsetnx(key, "assembling", 1):
            await self.stream.put(job.id, ASSEMBLE)

    async def _cancelled(self, job: Job) -> bool:
        status = await self.redis.hget(PREFIX + job.id, "status")
        return status is None or status.decode() in FINAL

    async def _assemble_shared(self, job: Job) -> None:
        await self._assemble(job)  # sets the local Job's fields, or fails it
        if job.status == "succeeded":
            if await self._cancelled(job):
                return
            await self.redis.hset(
                PREFIX + job.id,
                mapping={
                    "status": "succeeded", "finished_at": job.finished_at or time.time(),
                    "result_key": job.result_key or "", "result_bytes": job.result_bytes,
                    "duration": job.duration, "captions_key": job.captions_key or "",
                    "chapters": json.dumps(chapters_json(job.chapters)),
                },
            )  # fmt: skip
        elif job.status == "failed":
            await self._fail_shared(job, job.error or "assembly failed")

    async def _fail_shared(self, job: Job, error: str) -> None:
        if await self._cancelled(job):
            return
        await self.redis.hset(
            PREFIX + job.id,
            mapping={"status": "failed", "error": error, "finished_at": time.time()},
        )
        await self.redis.publish(CANCEL_CHANNEL, job.id)
