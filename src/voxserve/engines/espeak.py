"""espeak-ng voices: robotic, but about a hundred languages, and very fast.

Runs Debian's ``espeak-ng`` program (not bundled: the container image installs it). Each
utterance is one process call with the text on stdin, so no text reaches a command line.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence

import numpy as np

from voxserve.engines.base import Head, Rest, whole_heads
from voxserve.errors import EngineError
from voxserve.types import FloatArray, SynthesisParams, Utterance, Voice

log = logging.getLogger(__name__)

SAMPLE_RATE = 22050
_WAV_HEADER = 44
_BASE_WPM = 175
_TIMEOUT_S = 60.0


def espeak_binary() -> str | None:
    """Path of the espeak-ng program, or None where it is not installed."""
    return shutil.which("espeak-ng")


def list_espeak_voices(binary: str) -> list[Voice]:
    """One voice per espeak-ng language (``espeak-de``, ``espeak-en-us``, ...)."""
    try:
        listing = subprocess.run(
            [binary, "--voices"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("espeak-ng voices unavailable: %s", exc)
        return []
    voices: dict[str, Voice] = {}
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        lang = fields[1]
        vid = f"espeak-{lang.lower()}"
        voices.setdefault(
            vid,
            Voice(
                id=vid,
                language=lang.replace("-", "_"),
                sample_rate=SAMPLE_RATE,
                engine="espeak",
                quality="robotic",
                source="espeak-ng",
            ),
        )
    return sorted(voices.values(), key=lambda v: v.id)


class EspeakEngine:
    """One espeak-ng language."""

    def __init__(self, voice: Voice, binary: str, *, lanes: int = 1) -> None:
        """``lanes``: espeak-ng processes that may run at once (one per core is right)."""
        self._voice = voice
        self._lanes = lanes
        self._binary = binary
        self._lang = voice.id.removeprefix("espeak-")

    @property
    def voice(self) -> Voice:
        return self._voice

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def batching(self) -> bool:
        return False  # one espeak-ng process per utterance

    @property
    def lanes(self) -> int:
        return self._lanes

    def prepare(self, text: str, params: SynthesisParams) -> list[Utterance]:
        return [Utterance(text=text, ids=(), params=params)] if text.strip() else []

    def infer(self, batch: Sequence[Utterance], *, exclusive: bool = False) -> list[FloatArray]:
        return [self._speak(u) for u in batch]  # espeak-ng is single-threaded either way

    def infer_head(
        self, batch: Sequence[Utterance], seconds: float, *, exclusive: bool = False
    ) -> list[Head]:
        return whole_heads(self, batch, exclusive=exclusive)  # one espeak-ng run per sentence

    def infer_rest(self, batch: Sequence[Rest], *, exclusive: bool = False) -> list[FloatArray]:
        raise TypeError(f"{self._voice.id} makes whole heads: there is no rest to infer")

    def _speak(self, utterance: Utterance) -> FloatArray:
        wpm = int(min(max(_BASE_WPM * utterance.params.speed, 80), 450))
        command = [self._binary, "-v", self._lang, "-s", str(wpm), "-b", "1", "--stdout", "--stdin"]
        try:
            done = subprocess.run(
                command, input=utterance.text.encode("utf-8"), capture_output=True,
                timeout=_TIMEOUT_S, check=True,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            raise EngineError(f"espeak-ng failed for voice {self._voice.id}: {exc}") from exc
        # espeak-ng streams its WAV with placeholder sizes: skip the header, read the PCM.
        data = done.stdout[_WAV_HEADER:]
        pcm = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
        return (pcm.astype(np.float32) / 32768.0).astype(np.float32)

    def close(self) -> None:
        """Nothing is held between calls."""
