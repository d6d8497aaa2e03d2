"""The Engine protocol: the only thing the pipeline knows about a speech model.

An engine speaks one voice. It turns a sentence into :class:`Utterance` objects (cheap,
on the caller's thread) and a batch of utterances into audio (expensive, on a worker
thread). It holds no HTTP, cache or metrics code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from voxserve.types import FloatArray, SynthesisParams, Utterance, Voice


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

    def close(self) -> None:
        """Release the model."""
        ...
