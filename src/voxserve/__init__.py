"""voxserve: self-hosted text-to-speech.

The library API::

    from voxserve import Synthesizer, SynthesisRequest, SynthesisParams

    synth = Synthesizer.from_settings()
    audio = synth.synthesize(SynthesisRequest("Hello, world.", format="mp3"))
    open("hello.mp3", "wb").write(audio.data)

    for chunk in synth.stream(SynthesisRequest("One. Two. Three.")):
        ...  # chunk.samples: float32 at chunk.sample_rate, one sentence each
"""

from typing import TYPE_CHECKING

from voxserve.errors import VoxserveError
from voxserve.settings import Settings
from voxserve.types import Audio, AudioChunk, SynthesisParams, SynthesisRequest, Voice

if TYPE_CHECKING:
    from voxserve.synthesizer import Synthesizer

__all__ = [
    "Audio",
    "AudioChunk",
    "Settings",
    "SynthesisParams",
    "SynthesisRequest",
    "Synthesizer",
    "Voice",
    "VoxserveError",
]


def __getattr__(name: str) -> object:
    # The synthesizer brings onnxruntime, PyAV and the engines: imported on first use, so
    # that ``import voxserve.text`` (or the settings, or the errors) stays light.
    if name == "Synthesizer":
        from voxserve.synthesizer import Synthesizer

        return Synthesizer
    raise AttributeError(f"module 'voxserve' has no attribute {name!r}")
