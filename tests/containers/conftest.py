"""Fixtures for the deployment tests: a private Docker engine and the images it builds.

These tests run only when asked for with ``-m containers`` (``make test-containers``):
they need root, start dockerd, build images and take minutes (not root, those are
skipped with the reason, and the static checks run alone). Everything they start is
removed at the end of the session, also when a test fails; built images stay in the
engine's data root under ``.cache/containers/`` so the next run reuses them.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from types import FrameType

import pytest
from engine import NOT_ROOT, REPORT, TIMINGS, DockerEngine, section


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "containers: builds and runs the Docker image and the compose stack"
    )
    if "containers" in (config.option.markexpr or ""):
        # A CI time-out sends SIGTERM: turn it into an interrupt, so the finalizers still
        # take the stack down and stop dockerd.
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave this directory's tests out of runs that did not ask for the marker; in runs
    that did, the arm64 image (built and run under emulation, the slow part) comes last,
    so the amd64 image and the stack are checked as soon as they would be without it."""
    if "containers" in (config.option.markexpr or ""):
        items.sort(key=lambda item: "test_container_arm64" in item.nodeid)
        return
    ours = [item for item in items if item.get_closest_marker("containers")]
    if ours:
        config.hook.pytest_deselected(items=ours)
        items[:] = [item for item in items if not item.get_closest_marker("containers")]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS or REPORT:
        terminalreporter.section("container stage")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{name + ' (s)':<32} {seconds:8.1f}")
        for name, value in REPORT.items():
            terminalreporter.write_line(f"{name:<32} {value:8.0f}")


@pytest.fixture(scope="session")
def engine() -> Iterator[DockerEngine]:
    """A private dockerd; stopped, with every container, network and volume removed.

    Not root: every test that needs it is skipped, saying why (not failed)."""
    if NOT_ROOT:
        pytest.skip(NOT_ROOT)
    with section(TIMINGS, "start dockerd"):
        docker = DockerEngine().start()
    try:
        yield docker
    except BaseException:
        print(docker.log, file=sys.stderr)
        raise
    finally:
        with section(TIMINGS, "stop dockerd"):
            docker.stop()


@pytest.fixture(scope="session")
def base_image(engine: DockerEngine) -> str:
    """python:3.11-slim: the stand-in from debootstrap (no registry can be reached here)."""
    with section(TIMINGS, "base image"):
        return engine.script("deploy/docker/base-image.sh", timeout=900).stdout.split()[-1]


@pytest.fixture(scope="session")
def voxserve_image(engine: DockerEngine, base_image: str) -> str:
    """The image built from the repository's Dockerfile, tagged as compose.yaml expects."""
    with section(TIMINGS, "voxserve image"):
        engine.docker(
            "build", "--build-arg", f"BASE_IMAGE={base_image}", "-t", "voxserve:latest", ".",
            timeout=900,
        )  # fmt: skip
    return "voxserve:latest"


@pytest.fixture(scope="session")
def standin_images(engine: DockerEngine, base_image: str) -> list[str]:
    """nginx, redis and prometheus stand-ins, tagged with compose.yaml's image names."""
    with section(TIMINGS, "stand-in images"):
        out = engine.script(
            "deploy/docker/standin-images.sh", env={"BASE_IMAGE": base_image}, timeout=900
        ).stdout
    return out.split()
