"""Frozen data passed between the parts of the pipeline.

Pydantic lives only at the edges (HTTP schemas, settings); inside, everything is one of
these immutable dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

#: Bounds of the user-facing synthesis parameters; the HTTP schemas and the CLI use these.
SPEED_RANGE = (0.25, 4.0)
VOLUME_RANGE = (0.0, 4.0)
NOISE_RANGE = (0.0, 2.0)
SILENCE_RANGE = (0.0, 5.0)
SAMPLE_RATE_RANGE = (8000, 48000)


@dataclass(frozen=True)
class Voice:
    """An installed voice: what a client can name in a request."""

    id: str
    """Stable identifier, e.g. ``en_US-joe-medium`` or ``espeak-de``."""
    language: str
    """Language code, e.g. ``en_US``; picks the text normalizer."""
    sample_rate: int
    """Native sample rate of the model's output in Hz."""
    engine: str
    """Engine family that speaks it: ``piper`` or ``espeak``."""
    quality: str = "medium"
    """Piper's quality tier (x_low, low, medium, high) or ``robotic`` for espeak."""
    source: str = ""
    """Where it came from: a package name or a directory."""
    model_path: Path | None = None
    """The ``.onnx`` file, for file-based voices."""
    config_path: Path | None = None
    """The ``.onnx.json`` file beside it."""
    num_speakers: int = 1
    """Speakers in a multi-speaker model."""
    digest: str = ""
    """Content digest of the model file; part of every cache key."""


@dataclass(frozen=True)
class SynthesisParams:
    """Per-request knobs. ``None`` means the voice's own default."""

    speed: float = 1.0
    """Speaking rate multiplier (Piper: length_scale / speed). Piper keeps at least one frame
    per phoneme, so above about 2 the speech shortens less than proportionally."""
    volume: float = 1.0
    """Linear gain applied to the output, clipped to [-1, 1]."""
    noise_scale: float | None = None
    """Piper generator noise (voice variation)."""
    noise_w: float | None = None
    """Piper phoneme-duration noise (rhythm variation)."""
    speaker: int | None = None
    """Speaker index of a multi-speaker voice."""
    sample_rate: int | None = None
    """Resample the output to this rate; ``None`` keeps the voice's rate."""
    sentence_silence: float = 0.2
    """Seconds of silence inserted after each sentence."""


@dataclass(frozen=True)
class SynthesisRequest:
    """One request to speak ``text`` with ``voice`` into ``format``."""

    text: str
    """The text as the client sent it (normalized inside the pipeline)."""
    voice: str | None = None
    """Voice id; ``None`` picks the default voice."""
    format: str = "wav"
    """Output format name: wav, pcm, flac, mp3, opus, aac."""
    params: SynthesisParams = field(default_factory=SynthesisParams)
    """Synthesis parameters."""
    ssml: bool = False
    """Whether ``text`` is an SSML document (docs/ssml.md)."""


@dataclass(frozen=True)
class Utterance:
    """One unit of inference: a sentence prepared for an engine."""

    text: str
    """The normalized sentence it came from (for logs and debugging)."""
    ids: tuple[int, ...]
    """Phoneme ids for Piper; empty for engines that take text."""
    params: SynthesisParams
    """The request's parameters, which the engine turns into model inputs."""


@dataclass(frozen=True)
class WordTiming:
    """When one word is spoken (docs/captions.md)."""

    word: str
    """The word as written in the normalized text (an engine's own timings: its phonemes)."""
    start: float
    """Seconds from the start of the response's audio to the word's first sound."""
    end: float
    """Seconds from the start of the response's audio to the word's last sound."""


@dataclass(frozen=True)
class AudioChunk:
    """Synthesized audio for one sentence, or for its start, as the stream yields it."""

    samples: FloatArray
    """Mono float32 samples in [-1, 1], trailing sentence silence included (complete
    chunks only)."""
    sample_rate: int
    """Rate of ``samples`` in Hz."""
    index: int
    """Position of the sentence in the request, from 0."""
    text: str
    """The normalized sentence."""
    complete: bool = True
    """False for the start of a sentence sent before the rest was synthesized (a stream's
    first sentence); the next chunk, of the same index, completes it."""
    words: tuple[WordTiming, ...] = ()
    """The sentence's words, timed from the start of the response (``Plan.words`` only;
    engines without durations give none). A sentence's words come with its first chunk, so
    a head's may end after the head does."""

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class Audio:
    """A whole synthesized result, encoded."""

    data: bytes
    """The encoded file (wav, mp3, ...)."""
    format: str
    """Format name of ``data``."""
    content_type: str
    """MIME type of ``data``."""
    sample_rate: int
    """Sample rate of the encoded audio in Hz."""
    duration: float
    """Audio length in seconds."""
    sentences: int = 0
    """Number of sentences synthesized."""
