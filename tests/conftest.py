"""Shared fixtures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from asr import Transcriber


@pytest.fixture(scope="session")
def transcriber() -> Transcriber:
    """Whisper tiny.en judge (tests/asr.py), loaded once per session in ~0.5 s.

    Imported here rather than at the top so only tests that ask for it need the ``asr``
    extra. A missing or broken model makes those tests fail, never skip.
    """
    from asr import Transcriber

    return Transcriber()
