"""What every Wyoming connection shares with the HTTP routes of the same process."""

from __future__ import annotations

from dataclasses import dataclass, field

from wyoming.info import Info

from voxserve.admission import Admission
from voxserve.asr import Transcriber
from voxserve.cache import AnyCache
from voxserve.metrics import Metrics
from voxserve.server.wyoming.info import describe
from voxserve.server.wyoming.speak import Speaker
from voxserve.settings import Settings
from voxserve.synthesizer import Synthesizer


@dataclass
class Doors:
    """The process's synthesizer, transcriber, admission gate, cache and metrics."""

    settings: Settings
    synth: Synthesizer
    transcriber: Transcriber | None
    admission: Admission
    cache: AnyCache | None
    metrics: Metrics
    version: str = "0"
    speaker: Speaker = field(init=False)

    def __post_init__(self) -> None:
        self.speaker = Speaker(self.synth, self.metrics, self.cache, self.admission)

    def info(self) -> Info:
        """The answer to ``describe``."""
        return describe(self.synth.voices(), self.transcriber, version=self.version)
