"""What importing a part of voxserve brings with it: the text frontend, the settings and
the errors stay light (no onnxruntime, PyAV, Prometheus or web framework)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.inprocess

HEAVY = ("onnxruntime", "av", "prometheus_client", "fastapi", "uvicorn", "redis")


@pytest.mark.parametrize("module", ["voxserve", "voxserve.text", "voxserve.settings"])
def test_light_modules_import_nothing_heavy(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []


def test_the_synthesizer_is_still_importable_from_the_package() -> None:
    from voxserve import Synthesizer
    from voxserve.synthesizer import Synthesizer as Direct

    assert Synthesizer is Direct


#: What `voxserve serve` must not import before it answers: each is loaded on first use
#: (PyAV: by an mp3/opus/aac/flac answer, a resampled one or an upload; Wyoming: with
#: VOXSERVE_WYOMING; Whisper: in the background or by the first
#: transcription; the object store, the task queue and Redis: when configured; onnx: when
#: a graph is cut), so a cold start does not pay for it.
COLD_START_LAZY = (
    "av", "wyoming", "faster_whisper", "ctranslate2", "boto3", "botocore", "taskiq", "redis",
    "onnx", "piper", "rich", "httpx",
)  # fmt: skip


def test_serve_imports_what_a_cold_start_needs_and_nothing_lazy() -> None:
    code = (
        "import sys, voxserve.cli, voxserve.logs, voxserve.server.run; "
        f"print(' '.join(m for m in {COLD_START_LAZY!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []
