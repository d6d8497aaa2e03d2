"""``voxserve jobs`` against a real server on the fake engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_server import FakeServer, fake_settings
from fakes import FakeEngine
from voxserve.cli import main

pytestmark = pytest.mark.inprocess


def test_submit_wait_status_fetch_cancel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = tmp_path / "book.md"
    book.write_text("# One\n\n" + " ".join(f"Sentence {n} here." for n in range(30)))
    settings = fake_settings(cache_dir=tmp_path, jobs_chunk_chars=100)
    with FakeServer(FakeEngine(), settings) as server:
        out = tmp_path / "book.wav"
        code = main(["jobs", "--url", server.url, "submit", str(book), "-f", "wav",
                     "--wait", "-o", str(out)])  # fmt: skip
        assert code == 0
        assert out.read_bytes()[:4] == b"RIFF"
        job_id = capsys.readouterr().err.split()[0]
        assert main(["jobs", "--url", server.url, "status", job_id]) == 0
        assert '"succeeded"' in capsys.readouterr().out
        again = tmp_path / "again.wav"
        assert main(["jobs", "--url", server.url, "fetch", job_id, "-o", str(again)]) == 0
        assert again.read_bytes() == out.read_bytes()
        # Captions saved beside the audio; chapters in the job.
        capsys.readouterr()
        code = main(["jobs", "--url", server.url, "submit", str(book), "-f", "wav", "--wait",
                     "-o", str(out), "--timestamps", "vtt", "--chapters"])  # fmt: skip
        assert code == 0
        assert (tmp_path / "book.vtt").read_text().startswith("WEBVTT")
        captioned = capsys.readouterr().err.split()[0]
        assert main(["jobs", "--url", server.url, "status", captioned]) == 0
        assert '"title": "One"' in capsys.readouterr().out
        assert main(["jobs", "--url", server.url, "cancel", job_id]) == 0
        with pytest.raises(SystemExit, match="404"):
            main(["jobs", "--url", server.url, "status", "job_nope"])
