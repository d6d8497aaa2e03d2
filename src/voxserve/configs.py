"""What the core needs to know, as small frozen records built from the settings at the edge.

:class:`~voxserve.settings.Settings` is the service's configuration: ~90 fields read from
the environment and validated by pydantic. The core (the voice library, the synthesizer)
takes only the handful each part uses, already resolved (``lanes`` is a count of lanes,
never "0: one per core"), so it can be built in a test or a library call without the
environment or pydantic, and a reader sees at the constructor what a part depends on.
The ``from_settings`` builders are the one place where a setting becomes a part's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from voxserve.settings import Settings


@dataclass(frozen=True)
class LibraryConfig:
    """How :class:`~voxserve.engines.voices.VoiceLibrary` loads and keeps voices."""

    default_voice: str
    preload: Literal["all", "default", "none"]
    """Which voices :meth:`VoiceLibrary.preload` loads."""
    max_loaded_voices: int
    device: Literal["auto", "cpu", "cuda"]
    threads: int
    """CPU cores an inference may use."""
    lanes: int
    """Inferences at once (each on threads / lanes cores)."""
    model_cache: Path
    """Where optimized graphs are saved (voxserve.engines.prepared)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> LibraryConfig:
        return cls(
            default_voice=settings.default_voice,
            preload=settings.preload,
            max_loaded_voices=settings.max_loaded_voices,
            device=settings.device,
            threads=settings.resolved_threads(),
            lanes=settings.resolved_lanes(),
            model_cache=settings.resolved_model_cache_dir(),
        )


@dataclass(frozen=True)
class SynthesisConfig:
    """What :class:`~voxserve.synthesizer.Synthesizer` and its schedulers work within."""

    lanes: int
    """The machine's inference lanes, shared by every voice's scheduler."""
    max_input_chars: int
    max_spoken_chars: int
    """Characters a request may become once normalized."""
    max_sentence_chars: int
    lexicon: tuple[Path, ...]
    """Pronunciation lexicon files, read at start and by ``reload_lexicon``."""
    names_lexicon: bool
    """Whether the bundled names lexicon is read after them (for US English Piper voices)."""
    batch_size: int
    batch_max_wait_ms: float
    max_queue: int
    """Sentences one voice's scheduler may hold."""
    stream_head_seconds: float
    """How much of a stream's first sentence is synthesized first (0: none)."""
    schedule_stretch: float
    schedule_max_overtake_seconds: float
    """When a whole response is due (voxserve.deadlines.first_due)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SynthesisConfig:
        return cls(
            lanes=settings.resolved_lanes(),
            max_input_chars=settings.max_input_chars,
            max_spoken_chars=settings.max_spoken_chars,
            max_sentence_chars=settings.max_sentence_chars,
            lexicon=settings.lexicon,
            names_lexicon=settings.names_lexicon,
            batch_size=settings.batch_size,
            batch_max_wait_ms=settings.batch_max_wait_ms,
            max_queue=settings.max_queue,
            stream_head_seconds=settings.stream_head_seconds,
            schedule_stretch=settings.schedule_stretch,
            schedule_max_overtake_seconds=settings.schedule_max_overtake_seconds,
        )
