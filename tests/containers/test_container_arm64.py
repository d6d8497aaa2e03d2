"""The voxserve image for linux/arm64 (Raspberry Pi 4/5 on a 64-bit OS, Graviton, Ampere),
built from the repository's Dockerfile and run under emulation on this machine.

No ARM machine is at hand, so the kernel runs the image's aarch64 programs through Debian's
qemu-user-static, registered with binfmt_misc by ``scripts/system-deps.sh containers``. The
base image is a stand-in made by ``ARCH=arm64 deploy/docker/base-image.sh`` (debootstrap
for arm64, its second stage under the emulator), and the Dockerfile is built for
``--platform linux/arm64`` from it, unchanged: pip installs PyPI's aarch64 wheels inside
the emulated build. The container then has to do what the amd64 one does: turn ready,
synthesize a sentence that Whisper on the host hears right, and transcribe speech with its
own aarch64 CTranslate2 (marked slow, about a minute under emulation: ``make test-arm64``
and ``make test-containers`` run it, ``make test`` leaves it out).

Emulation makes every step slow (an instruction-by-instruction translation, one process
on this machine's few cores), so the build, the start-up and each request get generous
but bounded time-outs; the build time, start-up time and image size go into the stage's
summary. These figures are emulation's, not a Raspberry Pi's.

Two things only emulation needs, both on ``docker run`` (the image is the one a Pi runs):

- onnxruntime's CPU detection (pytorch/cpuinfo) reads ``/proc/cpuinfo``, which under
  qemu-user 7.2 (Debian bookworm's) is the host's x86 one; finding no ARM core in it, it
  dereferences NULL at ``import onnxruntime``. The container gets the ``/proc/cpuinfo`` of
  a Raspberry Pi 5's Cortex-A76 cores, one per CPU of this machine, and ``QEMU_CPU`` makes
  the emulated CPU that core too (the default, ``max``, also offers SVE and SME, which no
  Pi has).
- ``--init``: a crashing program that is PID 1 under emulation hangs instead of dying
  (qemu re-raises the signal at itself, and the kernel ignores it for a namespace's init),
  so a crash would show up as a time-out.
"""

from __future__ import annotations

import io
import os
import platform
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from engine import REPORT, TIMINGS, DockerEngine, section, wait_for

from asr import Transcriber, word_error_rate

pytestmark = pytest.mark.containers

PLATFORM = "linux/arm64"
TAG = "voxserve:arm64"
API_KEY = "arm64-test-key"
SENTENCE = "The small board reads this sentence aloud for the kitchen."
#: The kernel's handler for aarch64 programs (scripts/system-deps.sh registers it).
EMULATOR = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
#: Raspberry Pi 5: Arm Cortex-A76 (implementer 0x41, part 0xd0b, r4p1); qemu knows it.
QEMU_CPU = "cortex-a76"
CORTEX_A76 = (
    "processor\t: {n}\n"
    "BogoMIPS\t: 108.00\n"
    "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid"
    " asimdrdm lrcpc dcpop asimddp\n"
    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\n"
    "CPU part\t: 0xd0b\nCPU revision\t: 1\n\n"
)
#: Time-outs, each about three times the longest it took under emulation on a loaded
#: 2-core machine (docs/deployment.md): arm64 base image 5-6 min from scratch, build 4-9
#: min, ready in 22-65 s, one 2.9 s sentence in 27-157 s, its transcription in 60-137 s.
BASE_TIMEOUT = 900
BUILD_TIMEOUT = 1800
READY_TIMEOUT = 300
REQUEST_TIMEOUT = 450
#: And all of them together: the arm64 part never takes CI (90 minutes, the rest of
#: `make test` about 11) past this many seconds.
BUDGET = 45 * 60
_deadline: list[float] = []


def within_budget(seconds: float) -> float:
    """``seconds``, or less where the module's budget has less left; fails when it is spent."""
    if not _deadline:
        _deadline.append(time.monotonic() + BUDGET)
    left = _deadline[0] - time.monotonic()
    if left <= 0:
        pytest.fail(f"the arm64 tests ran past their budget of {BUDGET} s")
    return min(seconds, left)


def native() -> bool:
    return platform.machine() in {"aarch64", "arm64"}


def possible_cpus() -> list[int]:
    """The kernel's possible CPUs ("0-1", "0,2-3"): cpuinfo expects each in /proc/cpuinfo."""
    cpus: list[int] = []
    for part in Path("/sys/devices/system/cpu/possible").read_text().strip().split(","):
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus


@pytest.fixture(scope="module")
def run_args(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """``docker run`` options for the arm64 image here: the platform, an init, and under
    emulation a Cortex-A76 and its /proc/cpuinfo (see the module's docstring)."""
    args = ["--platform", PLATFORM, "--init"]
    if native():
        return args
    cpuinfo = tmp_path_factory.mktemp("cpuinfo") / "cpuinfo"
    cpuinfo.write_text("".join(CORTEX_A76.format(n=n) for n in possible_cpus()))
    cpuinfo.chmod(0o644)
    return [*args, "-e", f"QEMU_CPU={QEMU_CPU}", "-v", f"{cpuinfo}:/proc/cpuinfo:ro"]


@pytest.fixture(scope="module")
def arm64_base_image(engine: DockerEngine) -> str:
    """python:3.11-slim for arm64: a stand-in from debootstrap, run through the emulator."""
    if not native() and not EMULATOR.exists():
        pytest.skip(
            "this machine cannot run arm64 programs: qemu-aarch64 is not registered with "
            "binfmt_misc (as root, scripts/system-deps.sh containers installs and registers it)"
        )
    with section(TIMINGS, "arm64 base image"):
        return engine.script(
            "deploy/docker/base-image.sh",
            env={"ARCH": "arm64"},
            timeout=within_budget(BASE_TIMEOUT),
        ).stdout.split()[-1]


@pytest.fixture(scope="module")
def arm64_image(engine: DockerEngine, arm64_base_image: str) -> str:
    """The repository's Dockerfile built for linux/arm64 from the arm64 base image."""
    with section(TIMINGS, "voxserve arm64 image"):
        engine.docker(
            "build", "--platform", PLATFORM, "--build-arg", f"BASE_IMAGE={arm64_base_image}",
            "-t", TAG, ".",
            timeout=within_budget(BUILD_TIMEOUT),
        )  # fmt: skip
    return TAG


@pytest.fixture(scope="module")
def arm64_url(
    engine: DockerEngine,
    arm64_image: str,
    run_args: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The arm64 container, hardened as docs/deployment.md says, ready on 127.0.0.1."""
    key_file = tmp_path_factory.mktemp("arm64") / "tts_api_key"
    key_file.write_text(f"{API_KEY}\n")
    key_file.chmod(0o644)  # the image runs as uid 10001
    name = "voxserve-arm64"
    started = time.monotonic()
    engine.docker(
        "run", "-d", "--name", name, *run_args,
        "--read-only", "--tmpfs", "/tmp",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-p", "127.0.0.1::5002",
        "-v", f"{key_file}:/run/secrets/tts_api_key:ro",
        "-e", "VOXSERVE_PRELOAD=default",
        arm64_image,
    )  # fmt: skip
    with engine.removed_after(name):
        binding = engine.docker("port", name, "5002/tcp").stdout.split()[0]
        url = f"http://127.0.0.1:{binding.rsplit(':', 1)[1]}"

        def ready() -> bool:
            if not engine.inspect(name)["State"]["Running"]:
                raise AssertionError("the arm64 container exited before it was ready")
            try:
                return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(
            ready,
            timeout=within_budget(READY_TIMEOUT),
            interval=1,
            what="the arm64 container's /readyz",
        )
        TIMINGS["arm64 container start to ready"] = round(time.monotonic() - started, 1)
        yield url


def test_arm64_image_is_aarch64_through_and_through(
    engine: DockerEngine, arm64_image: str, run_args: list[str]
) -> None:
    """The image says arm64, and what runs in it is aarch64: the kernel name, Python's
    machine and the onnxruntime and CTranslate2 builds pip chose."""
    assert engine.inspect(arm64_image)["Architecture"] == "arm64"
    probe = (
        "import platform, onnxruntime, ctranslate2; "
        "print(platform.machine()); "
        "print(onnxruntime.__file__); print(ctranslate2.__file__); "
        "print(onnxruntime.get_available_providers())"
    )
    out = engine.docker(
        "run", "--rm", *run_args, "--entrypoint", "python", arm64_image,
        "-c", probe,
        timeout=within_budget(REQUEST_TIMEOUT),
    ).stdout.splitlines()  # fmt: skip
    assert out[0] == "aarch64", out
    assert "CPUExecutionProvider" in out[3], out
    for module in out[1:3]:  # a shared library of the package, compiled for aarch64
        directory = os.path.dirname(module)
        elf = engine.docker(
            "run", "--rm", *run_args, "--entrypoint", "bash", arm64_image, "-c",
            f"find {directory} -name '*.so*' -print -quit | xargs head -c 20 | od -An -tx1",
            timeout=within_budget(REQUEST_TIMEOUT),
        ).stdout.split()  # fmt: skip
        # e_machine (bytes 18-19 of the ELF header) 0xb7 = EM_AARCH64
        assert (elf[:4], elf[18:20]) == (["7f", "45", "4c", "46"], ["b7", "00"]), elf


def test_arm64_image_size_is_reported_and_stays_lean(
    engine: DockerEngine, arm64_image: str
) -> None:
    size = int(engine.inspect(arm64_image)["Size"])
    REPORT["voxserve arm64 image size (MB)"] = round(size / 1e6)
    assert size < 1100e6


@pytest.fixture(scope="module")
def arm64_speech(arm64_url: str) -> bytes:
    """One sentence from the emulated container, as WAV: made once (it takes minutes under
    emulation), heard by Whisper on the host and by the container's own."""
    started = time.monotonic()
    response = httpx.post(
        f"{arm64_url}/v1/audio/speech",
        json={
            "model": "tts-1", "voice": "alloy", "input": SENTENCE, "response_format": "wav",
            "stream": False, "noise_scale": 0, "noise_w": 0,
        },
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=within_budget(REQUEST_TIMEOUT),
    )  # fmt: skip
    TIMINGS["arm64 one sentence"] = round(time.monotonic() - started, 1)
    assert response.status_code == 200, response.text
    return response.content


def test_arm64_container_synthesizes_intelligible_speech(
    arm64_speech: bytes, transcriber: Transcriber
) -> None:
    """The same check the amd64 image gets: Whisper tiny.en on the host hears the
    sentence the emulated container spoke."""
    assert arm64_speech[:4] == b"RIFF"
    with wave.open(io.BytesIO(arm64_speech)) as wav:
        REPORT["arm64 sentence audio (ms)"] = round(1000 * wav.getnframes() / wav.getframerate())
    heard = transcriber.transcribe_file(arm64_speech)
    assert word_error_rate(SENTENCE, heard) <= 0.15, heard


@pytest.mark.slow  # about a minute under emulation: make test-arm64 and test-containers
def test_arm64_container_transcribes_with_its_own_whisper(
    arm64_url: str, arm64_speech: bytes
) -> None:
    """Speech to text in the emulated container: its aarch64 CTranslate2 runs Whisper
    tiny.en on the speech its Piper made."""
    started = time.monotonic()
    heard = httpx.post(
        f"{arm64_url}/v1/audio/transcriptions",
        files={"file": ("sentence.wav", arm64_speech, "audio/wav")},
        data={"model": "whisper-1", "response_format": "json"},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=within_budget(REQUEST_TIMEOUT),
    )
    TIMINGS["arm64 one transcription"] = round(time.monotonic() - started, 1)
    assert heard.status_code == 200, heard.text
    assert word_error_rate(SENTENCE, heard.json()["text"]) <= 0.15, heard.json()
