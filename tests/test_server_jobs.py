"""Long-form jobs over HTTP (/v1/audio/jobs) on the fake engine, with results on local
disk and on a real S3 server (moto's, on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from fake_server import FakeServer, fake_settings, fake_synthesizer, wait_until
from fakes import FakeEngine
from s3_server import S3Server
from voxserve.lanes import BACKGROUND_NICENESS
from voxserve.types import SynthesisParams, SynthesisRequest

pytestmark = pytest.mark.inprocess

SENTENCES = [f"Sentence number {n} of the long text, with some words." for n in range(40)]
TEXT = " ".join(SENTENCES)


def settings(tmp_path: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = {"cache_dir": tmp_path, "jobs_chunk_chars": 200, "lanes": 2}
    return fake_settings(**(values | overrides))


def finished(server: FakeServer, job_id: str, **headers: str) -> dict[str, Any]:
    state: dict[str, Any] = {}

    def done() -> bool:
        state.update(httpx.get(f"{server.url}/v1/audio/jobs/{job_id}", headers=headers).json())
        return state["status"] in ("succeeded", "failed", "cancelled")

    wait_until(done, timeout=60, what=f"job {job_id} to end")
    return state


def single_synthesis(tmp_path: Path, text: str, fmt: str = "wav") -> bytes:
    synth = fake_synthesizer(FakeEngine(), settings(tmp_path))
    try:
        request = SynthesisRequest(text, voice="fake-voice", format=fmt, params=SynthesisParams())
        return synth.encode_chunks(synth.plan(request), list(synth.stream_plan(
            synth.plan(request, max_chars=len(text))
        ))).data  # fmt: skip
    finally:
        synth.close()


def test_job_on_disk_equals_one_synthesis(tmp_path: Path) -> None:
    engine = FakeEngine()
    with FakeServer(engine, settings(tmp_path, max_input_chars=100)) as server:
        answer = httpx.post(
            server.url + "/v1/audio/jobs",
            json={"input": TEXT, "voice": "fake-voice", "response_format": "wav"},
        )
        assert answer.status_code == 202, answer.text
        job = answer.json()
        assert answer.headers["location"] == f"/v1/audio/jobs/{job['id']}"
        assert job["progress"]["chunks_total"] > 5  # a text 20 x the speech request limit
        state = finished(server, job["id"])
        assert state["status"] == "succeeded", state
        assert state["progress"]["fraction"] == 1.0
        assert state["eta_seconds"] == 0.0
        audio = httpx.get(state["result"]["url"])  # signed: no key needed
        assert audio.status_code == 200
        assert audio.headers["content-type"] == "audio/wav"
        # Chunks are dropped once the result is assembled.
        assert not list((tmp_path / "objects" / "jobs" / job["id"]).glob("chunks/*"))
        tampered = state["result"]["url"].replace("signature=", "signature=x")
        assert httpx.get(tampered).status_code == 403
    assert audio.content == single_synthesis(tmp_path, TEXT)
    assert state["result"]["duration_seconds"] == pytest.approx(
        state["progress"]["audio_seconds"], abs=1e-3
    )


def test_markdown_upload_and_bad_files(tmp_path: Path) -> None:
    with FakeServer(FakeEngine(), settings(tmp_path, jobs_max_input_bytes=2048)) as server:
        url = server.url + "/v1/audio/jobs"
        markdown = b"# Chapter one\n\nIt was a **dark** night. See [the map](http://x.y).\n"
        answer = httpx.post(
            url,
            files={"file": ("book.md", markdown, "text/markdown")},
            data={"voice": "fake-voice", "response_format": "wav"},
        )
        assert answer.status_code == 202, answer.text
        assert finished(server, answer.json()["id"])["status"] == "succeeded"
        inferred = " ".join(server.engine.inferred())
        assert "Chapter one." in inferred
        assert "**" not in inferred
        assert "http" not in inferred

        png = httpx.post(url, files={"file": ("a.png", b"\x89PNG\r\n\x1a\n", "image/png")})
        assert png.status_code == 400
        assert png.json()["error"]["code"] == "invalid_text_file"
        binary = httpx.post(url, files={"file": ("a.txt", b"\xff\xfe\x00a", "text/plain")})
        assert binary.status_code == 400
        assert binary.json()["error"]["param"] == "file"
        large = httpx.post(url, files={"file": ("a.txt", b"word " * 500, "text/plain")})
        assert large.status_code == 413
        assert large.json()["error"]["code"] == "job_input_too_large"
        assert httpx.post(url, json={"input": "x" * 2049}).status_code == 413
        assert httpx.post(url, json={"input": "Hi.", "speed": 99}).status_code == 400
        assert httpx.post(url, json={"input": "Hi.", "voice": "nobody"}).status_code == 404
        assert (
            httpx.post(url, content=b"Hi.", headers={"content-type": "text/plain"}).status_code
            == 415
        )
        assert httpx.get(url + "/job_unknown").status_code == 404
        assert httpx.delete(url + "/job_unknown").status_code == 404


def test_jobs_belong_to_their_key(tmp_path: Path) -> None:
    with FakeServer(FakeEngine(), settings(tmp_path, api_keys="alice,bob")) as server:
        url = server.url + "/v1/audio/jobs"
        alice = {"Authorization": "Bearer alice"}
        bob = {"Authorization": "Bearer bob"}
        job = httpx.post(url, json={"input": TEXT, "voice": "fake-voice"}, headers=alice).json()
        assert httpx.get(f"{url}/{job['id']}", headers=bob).status_code == 404
        assert httpx.get(f"{url}/{job['id']}/events", headers=bob).status_code == 404
        assert httpx.delete(f"{url}/{job['id']}", headers=bob).status_code == 404
        assert httpx.get(f"{url}/{job['id']}").status_code == 401
        assert finished(server, job["id"], **alice)["status"] == "succeeded"


def test_events_then_cancel(tmp_path: Path) -> None:
    engine = FakeEngine(seconds_per_call=0.05)
    with FakeServer(engine, settings(tmp_path)) as server:
        url = server.url + "/v1/audio/jobs"
        job = httpx.post(url, json={"input": TEXT * 3, "voice": "fake-voice"}).json()
        events: list[tuple[str, dict[str, Any]]] = []
        with httpx.stream("GET", f"{url}/{job['id']}/events", timeout=30) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            name = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((name, json.loads(line.removeprefix("data: "))))
                    if name == "job.progress" and events[-1][1]["progress"]["chunks"] >= 2:
                        assert httpx.delete(f"{url}/{job['id']}").json()["status"] == "cancelled"
        assert events[-1][0] == "job.cancelled"
        chunks = [e[1]["progress"]["chunks"] for e in events]
        assert chunks == sorted(chunks)
        calls = len(engine.batches)
        # Nothing more reaches the engine than the sentences already running.
        wait_until(lambda: len(engine.batches) <= calls + 2, timeout=5, what="chunks to stop")
        assert not (tmp_path / "objects" / "jobs" / job["id"]).exists()


def test_store_down_jobs_wait_speech_unaffected(tmp_path: Path) -> None:
    with S3Server() as s3:
        overrides = s3.settings() | {"storage_timeout_seconds": 0.3}
        with FakeServer(FakeEngine(), settings(tmp_path, **overrides)) as server:
            url = server.url + "/v1/audio/jobs"
            s3.pause()
            try:
                job = httpx.post(url, json={"input": TEXT, "voice": "fake-voice"}).json()
                wait_until(
                    lambda: httpx.get(f"{url}/{job['id']}").json()["waiting"] is not None,
                    timeout=30, what="the job to wait for the store",
                )  # fmt: skip
                speech = httpx.post(
                    server.url + "/v1/audio/speech", json={"input": "Hello.", "voice": "fake-voice"}
                )
                assert speech.status_code == 200
                assert speech.content
            finally:
                s3.resume()
            state = finished(server, job["id"])
            assert state["status"] == "succeeded", state
            assert state["waiting"] is None
            result = httpx.get(state["result"]["url"])  # presigned by boto3
            assert result.status_code == 200
            assert (
                result.content[:3] == b"ID3" or result.content[:2] == b"\xff\xfb" or result.content
            )
            keys = s3.client().list_objects_v2(Bucket=s3.bucket)["Contents"]
            assert [k["Key"] for k in keys] == [f"voxserve/jobs/{job['id']}/{job['id']}.mp3"]


class DeferredLanesEngine(FakeEngine):
    """An engine whose lane sessions open later (as Piper's do on a fresh server): a job
    must open them before its first sentence, and run each sentence on one lane."""

    def __init__(self) -> None:
        super().__init__()
        self.lanes_open = False
        self.job_runs: list[tuple[bool, bool, int]] = []
        """(lanes open, exclusive, niceness) of every run on a job thread."""

    def open_lanes(self) -> None:
        self.lanes_open = True

    def infer(self, batch: Any, *, exclusive: bool = False) -> Any:
        if threading.current_thread().name.startswith("voxserve-job"):
            nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            self.job_runs.append((self.lanes_open, exclusive, nice))
        return super().infer(batch, exclusive=exclusive)


def test_a_job_opens_the_lanes_and_runs_its_sentences_on_yielding_threads(
    tmp_path: Path,
) -> None:
    engine = DeferredLanesEngine()
    with FakeServer(engine, settings(tmp_path)) as server:
        answer = httpx.post(
            server.url + "/v1/audio/jobs",
            json={"input": TEXT, "voice": "fake-voice", "response_format": "wav"},
        )
        assert answer.status_code == 202, answer.text
        assert finished(server, answer.json()["id"])["status"] == "succeeded"
    assert len(engine.job_runs) == len(SENTENCES)
    assert {(open_, exclusive) for open_, exclusive, _ in engine.job_runs} == {(True, False)}
    if os.getpriority(os.PRIO_PROCESS, 0) < BACKGROUND_NICENESS:
        assert {nice for *_, nice in engine.job_runs} == {BACKGROUND_NICENESS}
