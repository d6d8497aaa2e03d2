"""The lexicon of a running server (``voxserve serve``): SIGHUP reads it again, as
``POST /admin/lexicon/reload`` does (docs/lexicon.md)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from fake_server import wait_until
from live import LiveServer

pytestmark = pytest.mark.slow


def test_sighup_reloads_the_lexicon_and_a_bad_file_keeps_the_old(tmp_path: Path) -> None:
    path = tmp_path / "lex.txt"
    path.write_text("Nguyen = win\n", encoding="utf-8")
    env = {"VOXSERVE_LEXICON": str(path), "VOXSERVE_WYOMING": "false", "VOXSERVE_ESPEAK": "false"}
    with LiveServer(env) as server:
        assert server.process is not None

        def values() -> list[str]:
            listed = httpx.get(server.url + "/admin/lexicon", timeout=10).json()
            return [entry["value"] for entry in listed["entries"]]

        assert values() == ["win"]
        path.write_text("Nguyen = newen\n", encoding="utf-8")
        server.process.send_signal(signal.SIGHUP)
        wait_until(lambda: values() == ["newen"], timeout=10, what="the lexicon reloaded")
        path.write_text("Nguyen =\n", encoding="utf-8")
        server.process.send_signal(signal.SIGHUP)
        wait_until(lambda: "was not reloaded" in server.log, timeout=10, what="the refusal")
        assert values() == ["newen"]
        assert "lex.txt:1" in server.log
        assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200  # still up
