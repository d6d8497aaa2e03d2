"""Long-form jobs: throughput over replicas, and interactive speech while a job runs.

Real parts throughout: ``python -m voxserve serve`` processes (tests/live.py's
LiveServer, cache off, CPU, the bundled Piper voice), a real redis-server (the chunk
stream, tests/redis_server.py) and moto's S3 server (chunks and results,
tests/s3_server.py), all on 127.0.0.1.

1. **Throughput**: one job of ~20,000 characters (``texts.py``'s paragraphs and article,
   repeated), as WAV, on 1 replica and then on 2 replicas sharing Redis and the bucket.
   Each replica is pinned to a core of its own (the affinity is set on this process
   before the server starts, and the server inherits it), so it runs one inference
   lane with one onnxruntime thread. Timed from the POST to ``succeeded`` (the assembly
   included); the ratio is 1-replica time / 2-replica time. **Target: >= 1.8.** Redis
   and moto run unpinned, beside the replicas. Each replica's CPU time (user + system,
   from /proc) is read too: audio seconds per CPU second, 2 replicas over 1, says what
   distribution costs apart from how busy the machine was (on a shared machine the wall
   time depends on what else runs on the two cores).
2. **Time to first audio while a job runs**: one replica; a short streamed request
   (WAV; first byte past the header) timed while idle, then while a job keeps the
   replica busy (only requests made while the job was ``running`` count), then idle
   again. Two configurations: the default (every core, lanes as configured by default)
   and one pinned core with one lane. **Target: busy median <= 1.5 x idle median.**

Run: ``.venv/bin/python benchmarks/bench_jobs.py [--quick]`` -> results/jobs.json
(~6 min; --quick: a 3,000-character job and fewer requests).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import (  # noqa: E402
    BENCH_ENV,
    TESTS,
    import_live_server,
    median,
    parse_args,
    print_table,
    summary,
    verdict,
    write_result,
)
from texts import LONG_ARTICLE, PARAGRAPHS  # noqa: E402

sys.path.insert(0, str(TESTS))
from redis_server import RedisServer  # type: ignore[import-not-found]  # noqa: E402
from s3_server import S3Server  # type: ignore[import-not-found]  # noqa: E402

LiveServer = import_live_server()

SPEEDUP_TARGET = 1.8
TTFA_RATIO_TARGET = 1.5
QUESTION = "Could you tell me when the next train to the airport leaves?"
WAV_HEADER = 44
PREFIX = "voxserve:jobs:"


def long_text(chars: int) -> str:
    """Whole paragraphs, repeated, up to about ``chars`` characters."""
    pieces: list[str] = []
    size = 0
    pool = [*PARAGRAPHS, LONG_ARTICLE]
    while size < chars:
        piece = pool[len(pieces) % len(pool)]
        pieces.append(piece)
        size += len(piece) + 2
    return "\n\n".join(pieces)


def server_env(r: Any, s3: Any, **extra: str) -> dict[str, str]:
    return {
        **BENCH_ENV,
        "VOXSERVE_WYOMING": "false",
        "VOXSERVE_JOBS_REDIS_URL": r.url,
        "VOXSERVE_STORAGE_BUCKET": s3.bucket,
        "VOXSERVE_STORAGE_ENDPOINT": s3.endpoint,
        "VOXSERVE_STORAGE_PATH_STYLE": "true",
        "VOXSERVE_STORAGE_ACCESS_KEY_ID": "test-access-key",
        "VOXSERVE_STORAGE_SECRET_ACCESS_KEY": "test-secret-key",
        **extra,
    }


@contextlib.contextmanager
def pinned(core: int | None) -> Iterator[None]:
    """This process (and what it starts meanwhile) on ``core`` alone; None: unchanged."""
    every = os.sched_getaffinity(0)
    if core is not None:
        os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, every)


def start(env: dict[str, str], core: int | None) -> Any:
    with pinned(core):
        server = LiveServer(env, startup_timeout=120).__enter__()
    speak(server)  # warm: the voice loaded, the first run done
    return server


def speak(server: Any) -> float:
    """Seconds to the first audio byte of a short streamed WAV."""
    started = time.perf_counter()
    body = {"input": QUESTION, "voice": "alloy", "response_format": "wav", "stream": True}
    with httpx.stream("POST", server.url + "/v1/audio/speech", json=body, timeout=60) as answer:
        answer.raise_for_status()
        got = 0
        first = 0.0
        for data in answer.iter_bytes():
            got += len(data)
            if got > WAV_HEADER and not first:
                first = time.perf_counter() - started
        return first


def submit(server: Any, text: str) -> str:
    body = {"input": text, "voice": "alloy", "response_format": "wav"}
    answer = httpx.post(server.url + "/v1/audio/jobs", json=body, timeout=60)
    answer.raise_for_status()
    job_id: str = answer.json()["id"]
    return job_id


def status(server: Any, job_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/v1/audio/jobs/{job_id}", timeout=30)
    answer.raise_for_status()
    state: dict[str, Any] = answer.json()
    return state


def wait(server: Any, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = status(server, job_id)
        if state["status"] not in ("queued", "running"):
            return state
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} did not end within {timeout} s: {state}")
        time.sleep(0.2)


def cpu_seconds(server: Any) -> float:
    """CPU time (user + system, every thread) the server's process has used."""
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(r: Any, s3: Any, text: str, replicas: int) -> dict[str, Any]:
    cores = sorted(os.sched_getaffinity(0))
    env = server_env(r, s3, VOXSERVE_LANES="1")
    servers = [start(env, cores[n % len(cores)]) for n in range(replicas)]
    try:
        cpu_before = [cpu_seconds(server) for server in servers]
        started = time.perf_counter()
        job_id = submit(servers[0], text)
        state = wait(servers[0], job_id, timeout=1800)
        seconds = time.perf_counter() - started
        cpu = [cpu_seconds(s) - b for s, b in zip(servers, cpu_before, strict=True)]
    finally:
        for server in servers:
            server.__exit__(None, None, None)
    if state["status"] != "succeeded":
        raise RuntimeError(f"job ended {state['status']}: {state}")
    counts = r.client().hgetall(f"{PREFIX}{job_id}:replicas")
    audio = state["result"]["duration_seconds"]
    return {
        "replicas": replicas,
        "cores": [cores[n % len(cores)] for n in range(replicas)],
        "seconds": round(seconds, 3),
        "audio_seconds": audio,
        "audio_seconds_per_second": round(audio / seconds, 3),
        "chunks": state["progress"]["chunks_total"],
        "chunks_by_replica": sorted(int(v) for v in counts.values()),
        "replica_cpu_seconds": [round(c, 2) for c in cpu],
        "audio_seconds_per_cpu_second": round(audio / sum(cpu), 3),
    }


def ttfa(
    r: Any, s3: Any, text: str, *, core: int | None, lanes: str, rounds: int
) -> dict[str, Any]:
    extra = {"VOXSERVE_LANES": lanes} if lanes else {}
    server = start(server_env(r, s3, **extra), core)
    try:
        before = [speak(server) for _ in range(rounds)]
        job_id = submit(server, text)
        while status(server, job_id)["status"] == "queued":
            time.sleep(0.05)
        busy: list[float] = []
        while len(busy) < rounds:
            took = speak(server)
            if status(server, job_id)["status"] != "running":
                break  # the job ended: the last request may have found it idle
            busy.append(took)
            time.sleep(0.3)
        httpx.delete(f"{server.url}/v1/audio/jobs/{job_id}", timeout=30)
        after = [speak(server) for _ in range(rounds)]
    finally:
        server.__exit__(None, None, None)
    idle = before + after
    ratio = median(busy) / median(idle) if busy else float("nan")
    return {
        "pinned_core": core,
        "lanes": lanes or "default",
        "idle_s": summary(idle),
        "busy_s": summary(busy),
        "ratio_busy_over_idle": round(ratio, 3),
    }


def main() -> None:
    args = parse_args(__doc__ or "")
    text = long_text(3_000 if args.quick else 20_000)
    rounds = 3 if args.quick else 8
    with RedisServer() as r, S3Server() as s3:
        one = throughput(r, s3, text, 1)
        two = throughput(r, s3, text, 2)
        busy_text = long_text(3_000 if args.quick else 12_000)
        latency = {
            "default": ttfa(r, s3, busy_text, core=None, lanes="", rounds=rounds),
            "one_core_one_lane": ttfa(r, s3, busy_text, core=0, lanes="1", rounds=rounds),
        }
    speedup = one["seconds"] / two["seconds"]
    efficiency = two["audio_seconds_per_cpu_second"] / one["audio_seconds_per_cpu_second"]
    print_table(
        f"Job of {len(text)} characters (each replica pinned to one core)",
        ["replicas", "seconds", "audio s / s", "audio s / CPU s", "chunks by replica"],
        [[t["replicas"], t["seconds"], t["audio_seconds_per_second"],
          t["audio_seconds_per_cpu_second"], t["chunks_by_replica"]] for t in (one, two)],
    )  # fmt: skip
    print(f"  2 replicas / 1: {speedup:.2f}x (target >= {SPEEDUP_TARGET})")
    print(f"  audio per CPU second, 2 replicas / 1: {efficiency:.2f}")
    print_table(
        "Time to first audio of a short streamed request, idle and while a job runs",
        ["config", "idle median s", "busy median s", "ratio", "verdict"],
        [[name, m["idle_s"].get("median"), m["busy_s"].get("median"), m["ratio_busy_over_idle"],
          verdict(m["ratio_busy_over_idle"], TTFA_RATIO_TARGET)]
         for name, m in latency.items()],
    )  # fmt: skip
    path = write_result(
        "jobs",
        quick=args.quick,
        config={"job_chars": len(text), "busy_job_chars": len(busy_text), "rounds": rounds,
                "question": QUESTION, "chunk_chars": "default"},
        results={"throughput": {"one": one, "two": two, "speedup": round(speedup, 3),
                                "cpu_efficiency_two_over_one": round(efficiency, 3)},
                 "ttfa": latency},
        targets={"speedup_min": SPEEDUP_TARGET, "ttfa_ratio_max": TTFA_RATIO_TARGET},
        out=args.out,
    )  # fmt: skip
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
