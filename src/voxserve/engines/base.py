"""The Engine protocol: the only thing the pipeline knows about a speech model.

An engine speaks one voice. It turns a sentence into :class:`Utterance` objects (cheap,
on the caller's thread) and a batch of utterances into audio (expensive, on a worker
thread). It holds no HTTP, cache or metrics code.

A stream's first sentence can be spoken before all of it is synthesized:
:meth:`Engine.infer_head` returns the first seconds of its audio and a :class:`Rest`, which
:meth:`Engine.infer_rest` turns into the remaining audio. Head and rest together are the
audio :meth:`Engine.infer` gives. Piper does the acoustic model for the whole sentence, then
runs the vocoder on the head alone; engines that cannot stop early return all of the
audio as the head (:func:`whole_heads`), with no rest. A head also says when each spoken
word is (:attr:`Head.words`), where the engine knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from voxserve.types import FloatArray, SynthesisParams, Utterance, Voice, WordTiming


@dataclass(frozen=True)
class Rest:
    """What an engine needs to synthesize the rest of an utterance after its head."""

    utterance: Utterance
    """The utterance it continues."""
    state: Any
    """The engine's own (Piper: the latent frames and where the head stopped)."""


@dataclass(frozen=True)
class Head:
    """The first part of an utterance's audio."""

    audio: FloatArray
    """Mono float32 samples from the start."""
    rest: Rest | None
    """The remainder to synthesize; None when ``audio`` is all of it."""
    words: tuple[WordTiming, ...] = ()
    """When each of the utterance's spoken words (Piper: a group of phonemes between
    spaces, written in them) starts and ends, in seconds from the start of its audio, the
    rest included; empty where the engine cannot tell. A caller that wants the timings of
    a whole utterance asks for a head of ``math.inf`` seconds."""


def whole_heads(engine: Engine, batch: Sequence[Utterance], *, exclusive: bool) -> list[Head]:
    """``infer_head`` for an engine that cannot stop early: each head is the whole audio."""
    return [Head(audio, None) for audio in engine.infer(batch, exclusive=exclusive)]


@runtime_checkable
class Engine(Protocol):
    """A loaded voice that can synthesize."""

    @property
    def voice(self) -> Voice:
        """The voice this engine speaks."""
        ...

    @property
    def sample_rate(self) -> int:
        """Rate of the arrays :meth:`infer` returns, in Hz."""
        ...

    @property
    def batching(self) -> bool:
        """True when :meth:`infer` runs a batch as one padded call, so batching pays."""
        ...

    @property
    def lanes(self) -> int:
        """How many :meth:`infer` calls may usefully run at once (CPU: one per core, each on
        its own thread; GPU: 1, batches instead)."""
        ...

    def prepare(self, text: str, params: SynthesisParams) -> list[Utterance]:
        """Turn one normalized sentence into utterances (usually one)."""
        ...

    def infer(self, batch: Sequence[Utterance], *, exclusive: bool = False) -> list[FloatArray]:
        """Synthesize a batch: one mono float32 array per item, in order, exact length.

        ``exclusive``: no other call runs meanwhile, so this one may use every lane (all
        cores) to finish sooner. Otherwise it must keep to one lane.
        """
        ...

    def infer_head(
        self, batch: Sequence[Utterance], seconds: float, *, exclusive: bool = False
    ) -> list[Head]:
        """At least the first ``seconds`` of each item's audio (Piper: whole frames), and its
        rest, if any."""
        ...

    def infer_rest(self, batch: Sequence[Rest], *, exclusive: bool = False) -> list[FloatArray]:
        """The audio after each head: appended to it, what :meth:`infer` would have given."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...


def lanes_deferred(engine: Engine) -> bool:
    """Whether ``engine`` has yet to open its lanes' sessions (a Piper voice preloaded with
    ``lanes_later``: until then its lane runs share the sessions of every core)."""
    return not getattr(engine, "lanes_open", True)
