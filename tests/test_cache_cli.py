"""``voxserve cache warm | stats | clear`` run as a real command (``python -m voxserve``),
and a real server (tests/live.py) answering from what the command warmed.

The phrases are warmed once per module into a disk cache; tests that change the cache
work on a copy of that directory.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import soundfile
from prometheus_client.parser import text_string_to_metric_families

from live import LiveServer
from redis_server import RedisServer

PHRASES = (
    "Thank you for calling.",
    "Please hold while we connect you.",
    "Press one for sales. Press two for support.",
)
TOO_LONG = "word " * 1000  # 5,000 characters: over VOXSERVE_MAX_INPUT_CHARS (4,096)
ROUTE = "/v1/audio/speech"


def voxserve(
    *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m voxserve ARGS`` with only ``env`` as its VOXSERVE_* settings."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("VOXSERVE_")}
    full.pop("REDIS_URL", None)
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "voxserve", *args],
        env=full,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def disk_env(directory: Path) -> dict[str, str]:
    return {
        "VOXSERVE_CACHE": "disk",
        "VOXSERVE_CACHE_DIR": str(directory),
        "VOXSERVE_ESPEAK": "false",
    }


def characters_synthesized(server: LiveServer) -> float:
    """``voxserve_characters_total`` of the voice: grows only when a request is synthesized."""
    text = httpx.get(server.metrics_url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "voxserve_characters_total":
                return float(sample.value)
    return 0.0


def entry_files(directory: Path) -> list[Path]:
    return [p for p in directory.glob("??/*") if p.is_file() and not p.name.startswith(".")]


@dataclass(frozen=True)
class Warmed:
    directory: Path
    """The disk cache's directory (the server below may add entries to it later)."""
    stdout: str
    """What ``cache warm`` printed."""
    sizes: dict[str, int]
    """Size of every entry file right after warming, by name (the key)."""


@pytest.fixture(scope="module")
def warmed(tmp_path_factory: pytest.TempPathFactory) -> Warmed:
    """PHRASES warmed as wav into a disk cache by the real command."""
    root = tmp_path_factory.mktemp("warm")
    phrases = root / "phrases.txt"
    # Blank and whitespace-only lines are not phrases; the over-long one is refused.
    phrases.write_text("\n".join([PHRASES[0], "", "   ", *PHRASES[1:], TOO_LONG]) + "\n")
    directory = root / "cache"
    result = voxserve("cache", "warm", str(phrases), "-f", "wav", env=disk_env(directory))
    assert result.returncode == 0, result.stderr
    sizes = {p.name: p.stat().st_size for p in entry_files(directory)}
    return Warmed(directory, result.stdout, sizes)


@pytest.fixture(scope="module")
def server(warmed: Warmed) -> Iterator[LiveServer]:
    with LiveServer(disk_env(warmed.directory)) as live:
        yield live


def test_warm_stores_a_whole_and_a_streamed_entry_per_phrase_and_skips_the_long_one(
    warmed: Warmed,
) -> None:
    assert warmed.stdout.startswith(f"warmed {len(PHRASES)} phrases (")
    assert warmed.stdout.rstrip().endswith("skipped 1, failed to store 0")
    assert len(warmed.sizes) == 2 * len(PHRASES)
    stored = int(warmed.stdout.split("(")[1].split()[0])
    framing = 8 * len(warmed.sizes)  # every file is the audio plus an 8-byte frame
    assert stored == sum(warmed.sizes.values()) - framing


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_server_on_the_warmed_directory_hits_every_phrase_without_synthesizing(
    server: LiveServer, stream: bool
) -> None:
    for phrase in PHRASES:
        body = {"input": phrase, "voice": "alloy", "response_format": "wav", "stream": stream}
        response = httpx.post(server.url + ROUTE, json=body, timeout=120)
        assert response.status_code == 200, response.text
        assert response.headers["x-cache"] == "hit", phrase
        assert response.content[:4] == b"RIFF"
        if not stream:
            info = soundfile.info(io.BytesIO(response.content))
            assert info.samplerate == 22_050
            assert info.duration > 0.5
        else:
            assert len(response.content) > 44 + 22_050  # header plus > 0.5 s of 16-bit audio
    assert characters_synthesized(server) == 0


def test_a_phrase_that_was_not_warmed_is_a_miss(server: LiveServer) -> None:
    body = {"input": "This sentence was never warmed.", "response_format": "wav", "stream": False}
    response = httpx.post(server.url + ROUTE, json=body, timeout=120)
    assert response.headers["x-cache"] == "miss"
    assert characters_synthesized(server) > 0


def test_stats_prints_json_counting_the_entries_and_their_bytes(warmed: Warmed) -> None:
    directory = warmed.directory
    result = voxserve("cache", "stats", env=disk_env(directory))
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["backend"] == "disk"
    assert stats["entries"] >= 2 * len(PHRASES)  # the server may have added misses since
    assert stats["bytes"] == sum(p.stat().st_size for p in entry_files(directory))
    assert stats["directory"] == str(directory)
    assert stats["errors"] == 0


def test_clear_removes_every_entry_and_stats_then_shows_none(
    warmed: Warmed, tmp_path: Path
) -> None:
    copy = tmp_path / "cache"
    shutil.copytree(warmed.directory, copy)
    count = len(entry_files(copy))
    assert count >= 2 * len(PHRASES)

    result = voxserve("cache", "clear", env=disk_env(copy))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"removed {count} entries"
    assert entry_files(copy) == []
    stats = json.loads(voxserve("cache", "stats", env=disk_env(copy)).stdout)
    assert (stats["entries"], stats["bytes"]) == (0, 0)


def test_warm_reads_phrases_from_stdin(tmp_path: Path) -> None:
    result = voxserve(
        "cache", "warm", "-", "-f", "wav", env=disk_env(tmp_path), stdin=PHRASES[0] + "\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("warmed 1 phrases")
    assert len(entry_files(tmp_path)) == 2


@pytest.mark.parametrize("kind", ["memory", "off"])
@pytest.mark.parametrize("action", [["stats"], ["clear"], ["warm", "-"]])
def test_cache_command_without_a_shared_cache_exits_2_saying_what_to_set(
    kind: str, action: list[str]
) -> None:
    result = voxserve("cache", *action, env={"VOXSERVE_CACHE": kind}, stdin="Hello.\n")
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"VOXSERVE_CACHE={kind}: there is no shared cache" in result.stderr
    assert "VOXSERVE_CACHE=disk, redis or tiered" in result.stderr
    assert "Traceback" not in result.stderr


def test_stats_and_clear_work_on_redis_within_the_prefix() -> None:
    prefix = f"cli-{uuid.uuid4().hex[:6]}:"
    with RedisServer() as redis_server, redis_server.client() as plain:
        env = {"VOXSERVE_CACHE": "redis", "REDIS_URL": redis_server.url,
               "VOXSERVE_CACHE_PREFIX": prefix}  # fmt: skip
        for n in range(3):
            plain.set(f"{prefix}{n}", b"x" * 10)
        plain.set("someone-else", b"y")
        stats = json.loads(voxserve("cache", "stats", env=env).stdout)
        assert (stats["backend"], stats["entries"], stats["prefix"]) == ("redis", 3, prefix)
        cleared = voxserve("cache", "clear", env=env)
        assert cleared.stdout.strip() == "removed 3 entries"
        assert plain.keys("*") == [b"someone-else"]


@pytest.mark.parametrize("action", ["stats", "clear"])
def test_stats_and_clear_on_unreachable_redis_exit_2_with_a_one_line_error(
    action: str,
) -> None:
    env = {"VOXSERVE_CACHE": "redis", "REDIS_URL": "redis://127.0.0.1:1/0"}
    result = voxserve("cache", action, env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "127.0.0.1:1" in result.stderr


def test_missing_password_file_is_a_config_error_naming_the_variable(tmp_path: Path) -> None:
    env = {"VOXSERVE_CACHE": "redis", "REDIS_URL": "redis://127.0.0.1:1/0",
           "VOXSERVE_CACHE_PASSWORD_FILE": str(tmp_path / "missing")}  # fmt: skip
    result = voxserve("cache", "stats", env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "VOXSERVE_CACHE_PASSWORD_FILE" in result.stderr


def test_warm_into_unreachable_redis_fails_instead_of_reporting_success() -> None:
    env = {"VOXSERVE_CACHE": "redis", "REDIS_URL": "redis://127.0.0.1:1/0",
           "VOXSERVE_ESPEAK": "false"}  # fmt: skip
    result = voxserve("cache", "warm", "-", "-f", "wav", env=env, stdin=PHRASES[0] + "\n")
    assert result.returncode != 0
    assert "warmed 1 phrases" not in result.stdout
