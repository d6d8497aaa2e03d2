"""Every error voxserve raises on purpose.

One root, so callers can catch everything voxserve means with one clause::

    VoxserveError
    ├── InvalidRequest              the caller asked for something impossible (HTTP 400-class)
    │   ├── EmptyText               nothing speakable after cleaning
    │   ├── TextTooLong             over the configured character limit
    │   │   ├── SpokenTextTooLong   over the limit once numbers, dates... are written out
    │   │   └── JobTooLarge         a job's text over VOXSERVE_JOBS_MAX_INPUT_BYTES
    │   ├── InvalidParameter        a parameter outside its range (speed, volume, ...)
    │   ├── InvalidSsml             SSML that does not parse or breaks a limit (line, column)
    │   ├── InvalidLexicon          a pronunciation lexicon file with a bad line
    │   ├── UnknownVoice            no installed voice has that id
    │   ├── UnknownFormat           an output format voxserve cannot write
    │   ├── UnknownModel            an OpenAI `model` name voxserve does not serve
    │   ├── InvalidAudio            an upload that is not audio voxserve can decode
    │   ├── AudioTooLong            an upload longer than the configured limit
    │   ├── InvalidTextFile         a job's upload that is not UTF-8 text
    │   └── UnknownJob              no job of that id (for this API key)
    ├── Overloaded                  the queue is full; retry later (HTTP 503)
    ├── NoOutputDevice              playback asked for, but no sound card or sounddevice
    ├── VoiceLoadError              a voice's files are missing, corrupt or mismatched
    ├── CacheUnavailable            a cache admin command (stats, clear, warm) could not reach it
    ├── EngineError                 inference failed inside an engine
    ├── StorageError                an object could not be read or written (storage.py)
    │   ├── StorageUnavailable      the store did not answer or failed; retry later
    │   └── ObjectMissing           no object under that key
    └── ConfigError                 a setting is invalid; names the variable

Every error carries ``param``: the request field or setting it is about, so that the HTTP
layer can say which parameter was wrong (OpenAI's error shape).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class VoxserveError(Exception):
    """Root of every error voxserve raises on purpose."""

    code: str = "voxserve_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequest(VoxserveError):
    """The request cannot be served as asked."""

    code = "invalid_request"


class EmptyText(InvalidRequest):
    """The text has nothing speakable in it."""

    code = "empty_input"

    def __init__(self, message: str = "The input text is empty.", *, param: str = "input") -> None:
        super().__init__(message, param=param)


class TextTooLong(InvalidRequest):
    """The text is longer than the configured limit."""

    code = "input_too_long"

    def __init__(self, length: int, limit: int, *, param: str = "input") -> None:
        super().__init__(
            f"The input has {length} characters; the limit is {limit}. "
            "Split it into several requests, or raise VOXSERVE_MAX_INPUT_CHARS.",
            param=param,
        )
        self.length = length
        self.limit = limit


class SpokenTextTooLong(TextTooLong):
    """The text is short enough as written, too long once written out as spoken."""

    code = "spoken_input_too_long"

    def __init__(self, length: int, limit: int, *, param: str = "input") -> None:
        InvalidRequest.__init__(
            self,
            f"The input becomes {length} characters when spoken (numbers, dates and "
            f"symbols written out); the limit is {limit}. Split it into several requests, "
            "or raise VOXSERVE_MAX_SPOKEN_CHARS.",
            param=param,
        )
        self.length = length
        self.limit = limit


class InvalidParameter(InvalidRequest):
    """A parameter is outside its allowed range or of the wrong kind."""

    code = "invalid_parameter"


class InvalidSsml(InvalidRequest):
    """An SSML document that does not parse, or refused by its limits; the message names
    the line and column."""

    code = "invalid_ssml"

    def __init__(self, message: str, *, param: str | None = "input") -> None:
        super().__init__(message, param=param)


class InvalidLexicon(InvalidRequest):
    """A pronunciation lexicon with a line that cannot be read; the message names it."""

    code = "invalid_lexicon"


class UnknownVoice(InvalidRequest):
    """No installed voice has the requested id."""

    code = "voice_not_found"

    #: Up to this many installed voices are all named in the message; beyond it, the
    #: closest matches (with espeak-ng there are over a hundred).
    LIST_ALL = 12

    def __init__(
        self,
        voice: str,
        available: Iterable[str],
        *,
        param: str = "voice",
        default: str | None = None,
    ) -> None:
        names = sorted(available)
        if len(names) <= self.LIST_ALL:
            listed = f"Installed voices: {', '.join(names) or '(none)'}."
        else:
            close = difflib.get_close_matches(voice, names, n=5, cutoff=0.4)
            shown = [*close, *([default] if default and default not in close else [])]
            listed = (
                f"Closest: {', '.join(shown)}. "
                f"All {len(names)} installed voices: GET /v1/audio/voices or `voxserve voices`."
            )
        super().__init__(f"Unknown voice {voice!r}. {listed}", param=param)
        self.voice = voice
        self.available = names


class UnknownFormat(InvalidRequest):
    """The output format is not one voxserve can write."""

    code = "unsupported_format"

    def __init__(
        self,
        fmt: str,
        supported: Iterable[str],
        *,
        param: str = "format",
        message: str | None = None,
    ) -> None:
        names = list(supported)
        super().__init__(
            message or f"Unsupported audio format {fmt!r}. Supported formats: {', '.join(names)}.",
            param=param,
        )
        self.format = fmt
        self.supported = names


class UnknownModel(InvalidRequest):
    """The OpenAI-style model name is not served here."""

    code = "model_not_found"


class InvalidAudio(InvalidRequest):
    """An uploaded file is empty, not audio, corrupt, or in a format not taken."""

    code = "invalid_audio"

    def __init__(self, message: str, *, param: str = "file") -> None:
        super().__init__(message, param=param)


class AudioTooLong(InvalidRequest):
    """An uploaded recording lasts longer than the configured limit."""

    code = "audio_too_long"

    def __init__(self, limit: float, *, param: str = "file") -> None:
        super().__init__(
            f"The audio lasts longer than {limit:g} seconds, the limit. Split it, or raise "
            "VOXSERVE_ASR_MAX_SECONDS.",
            param=param,
        )
        self.limit = limit


class JobTooLarge(TextTooLong):
    """A job's text is larger than ``jobs_max_input_bytes``."""

    code = "job_input_too_large"

    def __init__(self, size: int, limit: int, *, param: str = "input") -> None:
        InvalidRequest.__init__(
            self,
            f"The job's text has {size} bytes (UTF-8); the limit is {limit}. Split it into "
            "several jobs, or raise VOXSERVE_JOBS_MAX_INPUT_BYTES.",
            param=param,
        )
        self.length = size
        self.limit = limit


class InvalidTextFile(InvalidRequest):
    """A job's uploaded file is not plain text or Markdown in UTF-8."""

    code = "invalid_text_file"


class UnknownJob(InvalidRequest):
    """No job has that id, or it belongs to another API key."""

    code = "job_not_found"

    def __init__(self, job_id: str, *, param: str = "job_id") -> None:
        super().__init__(f"No job {job_id!r} (for this API key).", param=param)


class Overloaded(VoxserveError):
    """Too much work is queued; the caller should retry after ``retry_after`` seconds."""

    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NoOutputDevice(VoxserveError):
    """Playback was requested but no audio output device is available."""

    code = "no_output_device"


class VoiceLoadError(VoxserveError):
    """A voice's model or config is missing, corrupt or does not match."""

    code = "voice_load_error"


class CacheUnavailable(VoxserveError):
    """A cache command could not reach its backend (requests never see this: a failing
    cache is a miss for them)."""

    code = "cache_unavailable"


class StorageError(VoxserveError):
    """An object could not be read or written (voxserve.storage)."""

    code = "storage_error"


class StorageUnavailable(StorageError):
    """The object store did not answer, or failed; retrying later may work."""

    code = "storage_unavailable"


class ObjectMissing(StorageError):
    """No object under that key."""

    code = "object_missing"


class EngineError(VoxserveError):
    """Inference failed inside an engine."""

    code = "engine_error"


class ConfigError(VoxserveError):
    """A setting is invalid; ``param`` names the environment variable."""

    code = "config_error"
