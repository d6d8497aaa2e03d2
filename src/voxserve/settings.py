"""All configuration in one pydantic-settings class.

Every field reads ``VOXSERVE_<NAME>``; the seed project's names keep working as aliases
(``TTS_BATCH_SIZE``, ``MODEL_PATH``, ``REDIS_URL``). Nothing reads the environment at
import time: call :meth:`Settings.load` (or construct ``Settings(...)`` in tests).
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from voxserve.cpus import usable_cores
from voxserve.deadlines import MAX_OVERTAKE_S, WHOLE_STRETCH
from voxserve.errors import ConfigError
from voxserve.settings_services import (
    AsrSettings,
    JobsSettings,
    LiveSettings,
    StorageSettings,
    WyomingSettings,
)

DEFAULT_VOICE = "en_US-joe-medium"


def _env(name: str, *aliases: str) -> Any:
    # Environment names are matched case-insensitively; keyword arguments use the field
    # name (populate_by_name). A bare PORT or HOST must not configure voxserve.
    return AliasChoices(f"VOXSERVE_{name}", *aliases)


class Settings(LiveSettings, AsrSettings, WyomingSettings, StorageSettings, JobsSettings):
    """voxserve's settings. Environment variables are named in each field's alias."""

    model_config = SettingsConfigDict(
        env_prefix="VOXSERVE_",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # Voices
    voices_dir: Path | None = Field(None, validation_alias=_env("VOICES_DIR", "MODEL_PATH"))
    voices_url: str | None = Field(
        None,
        description="s3://bucket/prefix/ of Piper voices (X.onnx + X.onnx.json, with their "
        "SHA-256 in SHA256SUMS there), synced into VOXSERVE_VOICES_DIR at start and by POST "
        "/admin/voices/reload; the store is reached with the VOXSERVE_STORAGE_* settings.",
    )  # fmt: skip
    default_voice: str = DEFAULT_VOICE
    voice_map: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="JSON object mapping names in OpenAI requests (built-in voice names, "
        'custom voice ids) to installed voice ids: {"nova": "en_US-x"}.',
    )
    espeak: bool = True
    preload: Literal["all", "default", "none"] = Field(
        "all",
        description="Piper voices loaded and warmed up at start-up; others load on first use.",
    )  # fmt: skip
    max_loaded_voices: int = Field(8, ge=1, le=1000)

    # Text
    max_input_chars: int = Field(4096, ge=1, le=10_000_000)
    max_spoken_chars: int = Field(
        8192, ge=1, le=10_000_000,
        description="Characters a request may become once normalized (numbers, dates and "
        "symbols written out); bounds the audio one request can ask for.",
    )  # fmt: skip
    max_sentence_chars: int = Field(400, ge=20, le=5000)
    lexicon: Annotated[tuple[Path, ...], NoDecode] = Field(
        (),
        description="Pronunciation lexicon files, comma-separated (docs/lexicon.md); "
        "reloaded by POST /admin/lexicon/reload or SIGHUP.",
    )
    names_lexicon: bool = Field(
        True,
        description="Read the bundled names lexicon (~450 names espeak-ng says wrong, in "
        "CMUdict's pronunciation) after the VOXSERVE_LEXICON files, whose entries win.",
    )

    # Inference
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(
        0, ge=0, le=256,
        description="CPU cores voxserve may use for inference; 0: every usable core "
        "(CPU affinity and the cgroup CPU limit).",
    )  # fmt: skip
    lanes: int = Field(
        0, ge=0, le=64, validation_alias=_env("LANES", "VOXSERVE_INFERENCE_WORKERS"),
        description="Inference lanes: sentences synthesized at once, each on threads / lanes "
        "cores; a sentence alone still gets every core. 0: one lane per core.",
    )  # fmt: skip
    batch_size: int = Field(4, ge=1, le=128, validation_alias=_env("BATCH_SIZE", "TTS_BATCH_SIZE"))
    batch_max_wait_ms: float = Field(5.0, ge=0, le=10_000)
    max_queue: int = Field(256, ge=1, le=1_000_000)
    schedule_stretch: float = Field(
        WHOLE_STRETCH, ge=1, le=1e6,
        description="Whole responses are due at arrival + this x their estimated inference "
        "time (at most VOXSERVE_SCHEDULE_MAX_OVERTAKE_SECONDS): shorter ones go first. 1: "
        "nearly first come first served.",
    )  # fmt: skip
    schedule_max_overtake_seconds: float = Field(
        MAX_OVERTAKE_S, ge=0, le=3600,
        description="The longest a whole response may be overtaken by shorter ones: the "
        "median against the tail under sustained load (docs/performance.md).",
    )  # fmt: skip
    stream_head_seconds: float = Field(
        1.0, ge=0, le=30,
        description="A stream's first sentence starts playing once this much of it is "
        "synthesized (Piper: the vocoder runs on it alone); 0: whole sentences only.",
    )  # fmt: skip

    model_cache_dir: Path | None = Field(
        None,
        description="Where model files voxserve makes are kept (optimized voice graphs, "
        "Whisper base joined from its two parts). Unset: $XDG_CACHE_HOME/voxserve/models, "
        "else ~/.cache/voxserve/models.",
    )  # fmt: skip

    # HTTP
    host: str = "127.0.0.1"
    port: int = Field(5002, ge=0, le=65535)
    metrics_port: int = Field(8000, ge=0, le=65535)
    drain_delay_seconds: float = Field(
        0, ge=0, le=300,
        description="After SIGTERM, answer /readyz 503 this long before closing the listener.",
    )  # fmt: skip
    keepalive_seconds: int = Field(5, ge=1, le=3600)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_concurrency: int = Field(
        64, ge=1, le=100_000,
        description="Hard ceiling on synthesis requests in progress; admission by estimated "
        "work (VOXSERVE_MAX_WAIT_SECONDS) usually refuses first.",
    )  # fmt: skip
    max_wait_seconds: float = Field(
        10.0, gt=0, le=3600,
        description="Admit a request while its estimated wait (work admitted before it / "
        "inference lanes) is at most this; else 503 with Retry-After at once.",
    )  # fmt: skip
    body_timeout_seconds: float = Field(
        10.0, gt=0, le=3600,
        description="A request body must arrive whole within this; else 408.",
    )  # fmt: skip
    send_timeout_seconds: float = Field(
        30.0, gt=0, le=3600,
        description="A client that takes longer than this to accept the next piece of a "
        "response is dropped, and its work cancelled.",
    )  # fmt: skip
    spool_bytes: int = Field(
        4 * 2**20, ge=0,
        description="A whole (non-streamed) response past this size is kept in a temporary "
        "file rather than in memory while it is made.",
    )  # fmt: skip
    rate_limit: float = Field(
        0.0, ge=0,
        description="Requests per second allowed per API key (token bucket); 0 turns it off.",
    )  # fmt: skip
    rate_burst: int = Field(10, ge=1)
    trusted_proxies: str = Field(
        "",
        description="Proxies whose X-Forwarded-For/-Proto name the client: IPs and CIDRs, "
        "comma separated; '*' trusts every peer. Empty: trust none, the peer is the client.",
    )  # fmt: skip
    api_keys: str = Field("", repr=False)
    api_key_file: Path = Path("/run/secrets/tts_api_key")

    # Cache
    cache: Literal["off", "memory", "disk", "redis", "tiered"] = Field(
        "memory",
        description="Unset: memory, or tiered (memory in front of Redis) when "
        "VOXSERVE_CACHE_URL or REDIS_URL is set.",
    )  # fmt: skip
    cache_max_bytes: int = Field(256 * 2**20, ge=0)
    cache_url: str | None = Field(None, validation_alias=_env("CACHE_URL", "REDIS_URL"), repr=False)
    cache_dir: Path = Path(".cache/voxserve")
    cache_ttl: float = Field(
        7 * 24 * 3600, ge=0,
        description="Seconds a Redis entry lives; 0 keeps entries until Redis evicts them.",
    )  # fmt: skip
    cache_max_entry_bytes: int = Field(8 * 2**20, ge=0)
    cache_timeout_ms: float = Field(50, gt=0, le=10_000)
    cache_prefix: str = "voxserve:"
    cache_password_file: Path | None = None

    # Logs
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    log_text: bool = False
    syslog: str | None = None

    @model_validator(mode="after")
    def _cache_needs_url(self) -> Settings:
        if "cache" not in self.model_fields_set and self.cache_url:
            self.cache = "tiered"  # a configured Redis is used, with memory in front of it
        if self.cache in ("redis", "tiered") and not self.cache_url:
            # Not a ValueError: pydantic lets it through, naming the variable itself.
            raise ConfigError(
                f"Invalid settings: VOXSERVE_CACHE={self.cache} needs VOXSERVE_CACHE_URL or "
                "REDIS_URL.",
                param="VOXSERVE_CACHE",
            )
        return self

    @field_validator("voice_map", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        # Decoded here rather than by pydantic-settings, so a bad value is a field error.
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(
                f'must be a JSON object such as {{"nova": "en_US-x"}} ({exc})'
            ) from None

    @field_validator("lexicon", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(Path(item.strip()) for item in value.split(",") if item.strip())
        return value

    @field_validator("cache_url", "jobs_redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("voices_url")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        bucket = value.removeprefix("s3://").split("/", 1)[0]
        if not value.startswith("s3://") or not bucket:
            raise ValueError("must be s3://BUCKET/ or s3://BUCKET/PREFIX/")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: str) -> str:
        # uvicorn would keep a malformed entry as a name that never matches: refuse it here.
        items = [item.strip() for item in value.split(",") if item.strip()]
        if items == ["*"]:
            return "*"
        for item in items:
            try:
                ipaddress.ip_network(item) if "/" in item else ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (10.0.0.0/8; no host bits set);"
                    " '*' alone trusts every peer"
                ) from None
        return ",".join(items)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment; a bad value raises ConfigError naming the variable."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            first = _field_env(str(exc.errors()[0]["loc"][0]))
            raise ConfigError(_describe(exc), param=first) from None

    def resolved_api_keys(self) -> frozenset[str]:
        """Keys from ``VOXSERVE_API_KEYS`` (comma or newline separated) and the key file."""
        keys = {k.strip() for k in self.api_keys.replace(",", "\n").splitlines()}
        if self.api_key_file.is_file():
            keys.update(line.strip() for line in self.api_key_file.read_text().splitlines())
        return frozenset(k for k in keys if k and not k.startswith("#"))

    def resolved_model_cache_dir(self) -> Path:
        """The setting, or voxserve/models in the user's cache directory (XDG), never the
        current directory: ``voxserve say`` must not leave a .cache wherever it runs."""
        if self.model_cache_dir is not None:
            return self.model_cache_dir
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(base) / "voxserve" / "models"

    def resolved_voices_dir(self) -> Path | None:
        """The voices directory: the setting, or with VOXSERVE_VOICES_URL (where the bucket's
        voices are synced to) voices/ in the model cache; None without either."""
        if self.voices_dir is not None:
            return self.voices_dir
        if self.voices_url:
            return self.resolved_model_cache_dir() / "voices"
        return None

    def resolved_threads(self) -> int:
        """Cores for inference: the setting, or every core this process may use."""
        return self.threads or usable_cores()

    def resolved_lanes(self) -> int:
        """Inference lanes: the setting, or one per core of :meth:`resolved_threads`."""
        return self.lanes or self.resolved_threads()


def platform_port(environ: Mapping[str, str]) -> int | None:
    """``$PORT``, the port a serverless platform (Cloud Run, Knative, Heroku-style hosts)
    tells a container to listen on, when ``VOXSERVE_PORT`` does not name one; else None.

    Only ``voxserve serve`` reads it, and ``--port`` and ``VOXSERVE_PORT`` come first: a
    bare PORT set for another program must not configure anything else in voxserve.
    """
    if any(name.upper() == "VOXSERVE_PORT" for name in environ) or "PORT" not in environ:
        return None
    value = environ["PORT"].strip()
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise ConfigError(
            f"Invalid setting PORT (got {value!r}): the serverless platform's port must be a "
            "number from 0 to 65535; VOXSERVE_PORT, when set, takes precedence over it.",
            param="PORT",
        )
    return int(value)


def env_names(field: str) -> list[str]:
    """The environment variables that set ``field``, the canonical one first."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(c) for c in alias.choices if isinstance(c, str) and c.isupper()]
    return [f"VOXSERVE_{field.upper()}"]


def _field_env(loc: str) -> str:
    """The variable the user most likely set for the field at ``loc`` (its name, or the
    alias it was read from): one present in the environment (a seed alias such as
    TTS_BATCH_SIZE included), else the canonical one."""
    for field in Settings.model_fields:
        names = env_names(field)
        if loc == field or loc.upper() in names:
            return next((n for n in names if n in os.environ), names[0])
    return loc


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        var = _field_env(str(error["loc"][0]))
        shown = "" if "KEY" in var or "URL" in var else f" (got {error.get('input')!r})"
        lines.append(f"Invalid setting {var}{shown}: {error['msg'].removeprefix('Value error, ')}.")
    return " ".join(lines)
