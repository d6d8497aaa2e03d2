"""Jobs over replicas, with real parts: two voxserve processes (the bundled Piper voice)
sharing a real redis-server (the chunk stream and the job state) and moto's S3 server
(chunks and results).

A 20,000-character job in the default chunks of 1,500 characters goes through both
replicas whole, and its audio is compared with one synthesis in this process at every
join. The kill and the cancel use a 4,000-character text in chunks of 300 (13 or so
chunks, enough for both replicas to take several and for one to be killed mid-job), which
shows the same for a fifth of the synthesis.
"""

from __future__ import annotations

import io
import itertools
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import redis
import srt

from fake_server import wait_until
from live import LiveServer
from redis_server import RedisServer
from s3_server import S3Server
from voxserve import SynthesisParams, SynthesisRequest, Synthesizer
from voxserve.jobs import chunk_sentences

SENTENCES = [
    f"This is sentence number {n} of a long chapter, read aloud by a cluster of servers."
    for n in range(48)
]
TEXT = " ".join(SENTENCES)
PREFIX = "voxserve:jobs:"

#: About 20,000 characters of sentences that are each said once (so each pair of them is
#: found once in the result), in words only (the text frontend leaves them as written).
LONG_SENTENCES = [
    f"The {adjective} {place} {event}, and the {who} wrote it down in a small notebook."
    for adjective, place, event, who in zip(
        itertools.cycle(["quiet", "bright", "narrow", "ancient", "busy", "gentle", "distant"]),
        [f"{a} {b}" for a in ("river", "market", "garden", "harbor", "station", "bridge",
                              "village", "forest", "tower", "library", "chapel", "meadow")
         for b in ("road", "square", "gate", "path", "wall", "yard", "corner", "house",
                   "hall", "lane", "hill", "field", "court", "field house", "inn", "mill",
                   "pier", "school", "shop", "well")],
        itertools.cycle(["was crowded with travelers", "opened early that morning",
                         "had been repaired last spring", "looked different in the rain",
                         "welcomed visitors from the coast"]),
        itertools.cycle(["keeper", "baker", "teacher", "painter", "sailor", "clerk"]),
        strict=False,
    )
]  # fmt: skip
LONG_TEXT = " ".join(LONG_SENTENCES)[:20_100].rsplit(".", 1)[0] + "."
QUIET = {"noise_scale": 0, "noise_w": 0}  # the same audio in every process


@pytest.fixture(scope="module")
def parts() -> Iterator[tuple[RedisServer, S3Server]]:
    with RedisServer() as r, S3Server() as s3:
        yield r, s3


def env(r: RedisServer, s3: S3Server) -> dict[str, str]:
    return {
        "VOXSERVE_ESPEAK": "false",
        "VOXSERVE_DEVICE": "cpu",
        "VOXSERVE_LANES": "1",
        "VOXSERVE_JOBS_REDIS_URL": r.url,
        "VOXSERVE_JOBS_CHUNK_CHARS": "300",
        "VOXSERVE_JOBS_LEASE_SECONDS": "3",
        "VOXSERVE_STORAGE_BUCKET": s3.bucket,
        "VOXSERVE_STORAGE_ENDPOINT": s3.endpoint,
        "VOXSERVE_STORAGE_PATH_STYLE": "true",
        "VOXSERVE_STORAGE_ACCESS_KEY_ID": "test-access-key",
        "VOXSERVE_STORAGE_SECRET_ACCESS_KEY": "test-secret-key",
    }


def submit(server: LiveServer, **fields: Any) -> dict[str, Any]:
    answer = httpx.post(
        server.url + "/v1/audio/jobs",
        json={"input": TEXT, "voice": "alloy", "response_format": "wav", **fields},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    job: dict[str, Any] = answer.json()
    return job


def state(server: LiveServer, job_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/v1/audio/jobs/{job_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def ended(server: LiveServer, job_id: str, *, timeout: float, what: str) -> dict[str, Any]:
    """The job's state once it ended (succeeded, failed or cancelled)."""
    final: dict[str, Any] = {}

    def done() -> bool:
        final.update(state(server, job_id))
        return final["status"] in ("succeeded", "failed", "cancelled")

    wait_until(done, timeout=timeout, what=what)
    return final


def by_replica(client: redis.Redis, job_id: str) -> dict[str, int]:
    counts = client.hgetall(f"{PREFIX}{job_id}:replicas")
    return {k.decode(): int(v) for k, v in counts.items()}  # type: ignore[union-attr]


def test_two_replicas_share_a_job_and_survive_a_kill(parts: tuple[RedisServer, S3Server]) -> None:
    r, s3 = parts
    client = r.client()
    with LiveServer(env(r, s3)) as a, LiveServer(env(r, s3)) as b:
        job = submit(a, timestamps="srt")  # each chunk's timing goes through the store
        job_id = job["id"]
        total = job["progress"]["chunks_total"]
        assert total >= 10
        # The other replica answers for the job too: the state is in Redis.
        assert state(b, job_id)["id"] == job_id

        def both_working() -> bool:
            return len(by_replica(client, job_id)) == 2

        wait_until(both_working, timeout=240, what="both replicas to synthesize chunks")
        assert state(a, job_id)["status"] == "running"
        assert b.process is not None
        b.process.kill()  # SIGKILL mid-job: its chunk in hand is not acknowledged
        b.process.wait(timeout=10)
        killed_log = b.log

        final = ended(a, job_id, timeout=300, what="the job to end on the surviving replica")
        assert final["status"] == "succeeded", final
        assert final["progress"]["chunks"] == total
        assert final["progress"]["fraction"] == 1.0
        # Every chunk is counted once, whoever synthesized it (and however often).
        assert {int(i) for i in client.smembers(f"{PREFIX}{job_id}:done")} == set(range(total))  # type: ignore[union-attr]
        assert sum(by_replica(client, job_id).values()) == total
        assert "synthesized by replica" in killed_log
        assert "synthesized by replica" in a.log
        audio = httpx.get(final["result"]["url"], timeout=30)
        assert audio.status_code == 200
        assert final["result"]["bytes"] == len(audio.content)
        captions = httpx.get(final["result"]["timestamps"]["url"], timeout=30)
        assert captions.status_code == 200
    with wave.open(io.BytesIO(audio.content)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    # The result is every chunk, once, in order: its length is the chunks' sum.
    assert seconds == pytest.approx(final["progress"]["audio_seconds"], abs=0.01)
    assert seconds == pytest.approx(final["result"]["duration_seconds"], abs=0.01)
    assert final["result"]["duration_seconds"] > 100  # ~48 sentences of speech
    # Chunks are dropped once the result is assembled.
    listing = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=f"voxserve/jobs/{job_id}/")
    keys = sorted(o["Key"] for o in listing.get("Contents", []))
    assert keys == [f"voxserve/jobs/{job_id}/{job_id}.srt", f"voxserve/jobs/{job_id}/{job_id}.wav"]
    # Captions of chunks from both replicas, placed in order over the whole audio.
    cues = list(srt.parse(captions.text))
    assert " ".join(c.content for c in cues).split()[:4] == ["This", "is", "sentence", "number"]
    starts = [c.start.total_seconds() for c in cues]
    assert starts == sorted(starts)
    assert seconds - 1.0 < cues[-1].end.total_seconds() <= seconds


def wav_samples(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getsampwidth() == 2
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def find(haystack: np.ndarray, needle: np.ndarray) -> list[int]:
    """Every offset where ``needle`` is in ``haystack`` sample for sample."""
    start = int(np.flatnonzero(needle)[0])  # past leading silence, which matches anywhere
    at = np.flatnonzero(haystack[start : haystack.size - needle.size + start + 1] == needle[start])
    for k in range(start + 1, min(needle.size, start + 64)):
        at = at[haystack[at + k] == needle[k]]
    return [int(i) for i in at if np.array_equal(haystack[i : i + needle.size], needle)]


def test_a_20000_character_job_on_two_replicas_is_one_synthesis_at_every_join(
    parts: tuple[RedisServer, S3Server], piper_synth: Synthesizer
) -> None:
    assert 19_900 <= len(LONG_TEXT) <= 20_100
    r, s3 = parts
    client = r.client()
    # The default chunk size and lease: chunks of several sentences, renewed while made.
    big = {**env(r, s3), "VOXSERVE_JOBS_CHUNK_CHARS": "1500", "VOXSERVE_JOBS_LEASE_SECONDS": "30"}
    with LiveServer(big) as a, LiveServer(big) as b:
        answer = httpx.post(
            a.url + "/v1/audio/jobs",
            json={"input": LONG_TEXT, "voice": "alloy", "response_format": "wav", **QUIET},
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        final = ended(b, job_id, timeout=400, what="the 20,000-character job")
        assert final["status"] == "succeeded", final
        counts = by_replica(client, job_id)
        assert len(counts) == 2, counts  # both replicas synthesized chunks
        assert min(counts.values()) >= 1, counts
        assert "synthesized by replica" in a.log
        assert "synthesized by replica" in b.log
    total = final["progress"]["chunks_total"]
    assert sum(counts.values()) == total >= 12

    # The result in the bucket, read from the bucket itself: a WAV as long as its chunks.
    key = f"voxserve/jobs/{job_id}/{job_id}.wav"
    stored = s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    samples = wav_samples(stored)
    rate = piper_synth.library.engine(piper_synth.library.resolve(None)).sample_rate
    assert samples.size / rate == pytest.approx(final["progress"]["audio_seconds"], abs=0.01)
    assert samples.size / rate == pytest.approx(final["result"]["duration_seconds"], abs=0.01)

    # At every join, the last sentence of one chunk and the first of the next, said by one
    # synthesis here, are in the result sample for sample, once, and in the text's order.
    params = SynthesisParams(noise_scale=0, noise_w=0)
    plan = piper_synth.plan(SynthesisRequest(LONG_TEXT, params=params), max_chars=len(LONG_TEXT))
    chunks = chunk_sentences(plan.sentences, 1500)
    assert len(chunks) == total
    found = []
    for before, after in itertools.pairwise(chunks):
        pair = " ".join(plan.sentences[i] for i in (before[-1], after[0]))
        request = SynthesisRequest(pair, params=params, format="wav")
        assert piper_synth.plan(request).sentences == (
            plan.sentences[before[-1]], plan.sentences[after[0]]
        )  # fmt: skip
        alone = wav_samples(piper_synth.synthesize(request).data)
        at = find(samples, alone)
        assert len(at) == 1, (pair, at)
        found.append(at[0])
    assert found == sorted(found)


def test_cancel_stops_every_replica(parts: tuple[RedisServer, S3Server]) -> None:
    r, s3 = parts
    client = r.client()
    with LiveServer(env(r, s3)) as a, LiveServer(env(r, s3)) as b:
        job_id = submit(a)["id"]

        def started() -> bool:
            return len(by_replica(client, job_id)) >= 1

        wait_until(started, timeout=240, what="the job to start")
        # Another key's view: with API keys off, the owner is "" for everyone; the
        # ownership check is the in-process tests' (test_server_jobs.py).
        answer = httpx.delete(f"{b.url}/v1/audio/jobs/{job_id}", timeout=10)
        assert answer.status_code == 200
        assert answer.json()["status"] == "cancelled"

        def drained() -> bool:
            # Every message acknowledged and removed: no replica holds or will take one.
            pending = client.xpending(f"{PREFIX}chunks", "voxserve")
            return client.xlen(f"{PREFIX}chunks") == 0 and pending["pending"] == 0

        took = wait_until(drained, timeout=10, what="every chunk to stop")
        assert took < 10
        done = client.scard(f"{PREFIX}{job_id}:done")
        assert done < submit_total(a, job_id)
        assert state(a, job_id)["status"] == "cancelled"


def submit_total(server: LiveServer, job_id: str) -> int:
    total: int = state(server, job_id)["progress"]["chunks_total"]
    return total
