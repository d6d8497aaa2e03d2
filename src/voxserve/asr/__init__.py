"""Speech to text: Whisper models from packages, on the machine's inference lanes.

- :mod:`.audio`: uploads decoded to 16 kHz mono (PyAV), the formats taken, the limits;
- :mod:`.models`: which models are installed and where their files are;
- :mod:`.whisper`: the engine contract (:class:`Recognizer`) and Whisper on faster-whisper;
- :mod:`.service`: :class:`Transcriber`, the service that runs recognition step by step
  beside synthesis;
- :mod:`.captions`: a transcription as json, text, srt, vtt or verbose_json;
- :mod:`.wer`: word error rate of a transcript (the optional ``eval`` extra), for tests,
  benchmarks and ``voxserve quantize``'s report.

faster-whisper is imported only when a model is loaded.
"""

from voxserve.asr.audio import WHISPER_RATE, decode_upload, to_whisper_rate
from voxserve.asr.models import AsrModel, discover
from voxserve.asr.service import AsrConfig, Transcriber, Transcription
from voxserve.asr.whisper import Info, Options, Recognizer, Segment, WhisperRecognizer, Word

__all__ = [
    "WHISPER_RATE",
    "AsrConfig",
    "AsrModel",
    "Info",
    "Options",
    "Recognizer",
    "Segment",
    "Transcriber",
    "Transcription",
    "WhisperRecognizer",
    "Word",
    "decode_upload",
    "discover",
    "to_whisper_rate",
]
