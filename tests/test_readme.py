"""The README's examples do what it says, so a newcomer's first commands work as pasted.

The HTTP examples run against the real server on the fake engine (fake_server), with
the README's address swapped for the test server's; the command lines are parsed by the
real argument parser; the compose notes are checked against compose.yaml.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fake_server import FakeServer, fake_settings
from fakes import FakeEngine, FakeRecognizer
from voxserve.cli import build_parser

pytestmark = pytest.mark.inprocess

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_every_voxserve_command_pastes_into_a_shell_and_parses() -> None:
    """Quotes balance, no $ unescaped inside double quotes (the shell would expand it:
    "paid $3.50" says "paid .50"), and the parser takes every command."""
    commands = 0
    for line in "\n".join(blocks("sh")).splitlines():
        if ".venv/bin/voxserve " not in line:
            continue
        for command in line.split(" | "):  # each command of a pipeline
            if not command.strip().startswith(".venv/bin/voxserve "):
                continue
            for quoted in re.findall(r'"(?:[^"\\]|\\.)*"', command):
                assert re.search(r"(?<!\\)\$", quoted) is None, line
            words = shlex.split(command, comments=True)
            build_parser().parse_args(words[1:])  # a usage error exits: the test fails
            commands += 1
    assert commands >= 4


@pytest.fixture(scope="module")
def server() -> Any:
    with FakeServer(FakeEngine(), fake_settings(), recognizer=FakeRecognizer()) as running:
        yield running


def test_the_curl_example_speaks(server: FakeServer) -> None:
    (curl,) = [b for b in blocks("sh") if "127.0.0.1:5002/v1/audio/speech" in b]
    words = shlex.split(curl.replace("\\\n", " "))
    url = words[words.index("-s") + 1].replace("http://127.0.0.1:5002", server.url)
    body = json.loads(words[words.index("-d") + 1])
    response = httpx.post(url, json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/mpeg"
    assert len(response.content) > 0


def test_the_openai_example_writes_a_wav_file_and_transcribes_it(
    server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (snippet,) = [b for b in blocks("python") if "from openai import OpenAI" in b]
    assert "pip install openai" in README  # it is not installed by make run
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(snippet.replace("http://127.0.0.1:5002", server.url), namespace)
    namespace["client"].close()
    assert (tmp_path / "speech.wav").read_bytes()[:4] == b"RIFF"
    assert capsys.readouterr().out == "window 0\n"  # what the fake recognizer hears


def test_the_compose_notes_name_the_port_and_the_key() -> None:
    """The stack serves on nginx's published port, with API keys on."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    (published,) = [p["published"] for p in compose["services"]["nginx"]["ports"]]
    port = re.fullmatch(r"\$\{VOXSERVE_HTTP_PORT:-(\d+)\}", published)
    assert port is not None
    assert f"http://127.0.0.1:{port[1]}" in README
    assert "tts_api_key" in str(compose["services"]["voxserve"]["secrets"])
    assert "Authorization: Bearer $(cat deploy/secrets/tts_api_key)" in README


def test_every_picture_and_local_link_exists() -> None:
    targets = re.findall(r'src="([^"]+)"', README) + re.findall(r"\]\(([^)#]+)\)", README)
    local = [t for t in targets if "://" not in t]
    assert "docs/img/web-page-phone.png" in local
    assert [t for t in local if not (ROOT / t).exists()] == []


def test_make_help_shows_the_port_not_a_placeholder() -> None:
    done = subprocess.run(
        ["make", "-s", "help", "PORT=5123"], cwd=ROOT, capture_output=True, text=True,
        timeout=30, check=True,
    )  # fmt: skip
    assert "http://127.0.0.1:5123" in done.stdout
    assert "$(" not in done.stdout
