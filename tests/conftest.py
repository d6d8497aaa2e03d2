"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from asr import Transcriber
    from voxserve.synthesizer import Synthesizer


@pytest.fixture(scope="session")
def transcriber() -> Transcriber:
    """Whisper tiny.en judge (tests/asr.py), loaded once per session in ~0.5 s.

    Imported here rather than at the top so only tests that ask for it need the ``asr``
    extra. A missing or broken model makes those tests fail, never skip.
    """
    from asr import Transcriber

    return Transcriber()


@pytest.fixture(scope="session")
def piper_synth() -> Iterator[Synthesizer]:
    """A Synthesizer on the bundled Piper voice (espeak-ng off, default settings), loaded
    once per session for the tests that only read from it (round trips, cache keys)."""
    from voxserve.settings import Settings
    from voxserve.synthesizer import Synthesizer

    synthesizer = Synthesizer.from_settings(Settings(espeak=False))
    yield synthesizer
    synthesizer.close()


#: The longest test files (pytest --durations on the 2-core machine, 20 to 75 s each), in
#: that order. pytest-xdist's loadfile hands files to the workers in collection order, so
#: they go first: a long file that came last would leave one worker running it alone.
LONGEST_FIRST = (
    "test_jobs_distributed.py",
    "test_web_page.py",
    "test_roundtrip_speech.py",
    "test_transcribe_live.py",
    "test_quantize.py",
    "test_concurrency.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))
