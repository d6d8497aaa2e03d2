"""voxserve: self-hosted text-to-speech.

The library API::

    from voxserve import Synthesizer, SynthesisRequest, SynthesisParams

    synth = Synthesizer.from_settings()
    audio = synth.synthesize(SynthesisRequest("Hello, world.", format="mp3"))
    open("hello.mp3", "wb").write(audio.data)

    for chunk in synth.stream(SynthesisRequest("One. Two. Three.")):
        ...  # chunk.samples: float32 at chunk.sample_rate, one sentence each
"""

from voxserve.errors import VoxserveError
from voxserve.settings import Settings
from voxserve.synthesizer import Synthesizer
from voxserve.types import Audio, AudioChunk, SynthesisParams, SynthesisRequest, Voice

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
