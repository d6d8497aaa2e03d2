"""Settings groups of the services beside speech synthesis, mixed into
:class:`voxserve.settings.Settings` (which gives them its environment prefix, aliases and
error reporting). Each group is a plain part of the one flat namespace: the variables stay
``VOXSERVE_LIVE_*``, ``VOXSERVE_ASR_*``, ``VOXSERVE_WYOMING_*``, ``VOXSERVE_STORAGE_*`` and
``VOXSERVE_JOBS_*``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings


class LiveSettings(BaseSettings):
    """Live speech over WebSocket (voxserve.server.live)."""

    # Live speech over WebSocket (/v1/audio/speech/live): text in as it is written
    live_idle_seconds: float = Field(
        1.0, gt=0, le=60,
        description="Live speech: text buffered without a sentence end is spoken once "
        "nothing new arrived for this long.",
    )  # fmt: skip
    live_hold_seconds: float = Field(
        3.0, gt=0, le=600,
        description="Live speech: text still growing without a sentence end is cut at a "
        "clause (else a word) once its oldest character waited this long.",
    )  # fmt: skip
    live_max_sessions: int = Field(64, ge=1, le=100_000)
    live_max_session_seconds: float = Field(
        900, gt=0, le=86_400,
        description="Live speech: a session ends (close 1008) after this long.",
    )  # fmt: skip
    live_max_session_chars: int = Field(
        100_000, ge=1, le=100_000_000,
        description="Live speech: text one session may send in all (close 1009 beyond).",
    )  # fmt: skip


class AsrSettings(BaseSettings):
    """Speech to text (voxserve.asr)."""

    # Speech to text
    asr: bool = Field(
        True,
        description="Serve speech recognition (/v1/audio/transcriptions, /translations).",
    )  # fmt: skip
    asr_model: str | None = Field(
        None,
        description="Default speech recognition model: an installed id (whisper-tiny.en, "
        "whisper-base) or a CTranslate2 Whisper directory. Unset: whisper-tiny.en.",
    )  # fmt: skip
    asr_max_upload_bytes: int = Field(
        25 * 2**20, ge=1024,
        description="Largest audio upload (the whole multipart body), as OpenAI's 25 MB.",
    )  # fmt: skip
    asr_max_seconds: float = Field(
        3600, gt=0, le=86_400,
        description="Longest recording taken for recognition, in seconds.",
    )  # fmt: skip
    asr_upload_timeout_seconds: float = Field(
        120, gt=0, le=3600,
        description="An upload must arrive whole within this; else 408.",
    )  # fmt: skip
    asr_vad: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Skip silence with voice activity detection; auto: for recordings "
        "longer than one 30 s window.",
    )  # fmt: skip
    asr_beam_size: int = Field(1, ge=1, le=10)


class WyomingSettings(BaseSettings):
    """The Wyoming listener (voxserve.server.wyoming)."""

    # Wyoming (Home Assistant): no API keys in that protocol, so a trusted network only.
    wyoming: bool = Field(
        True,
        description="Serve the Wyoming protocol (Home Assistant's voice services) beside HTTP.",
    )  # fmt: skip
    wyoming_host: str = Field(
        "127.0.0.1",
        description="Address of the Wyoming listener. Wyoming has no API keys: bind it only "
        "where every client that can reach it is trusted.",
    )  # fmt: skip
    wyoming_port: int = Field(10200, ge=0, le=65535)
    wyoming_zeroconf: bool = Field(
        False,
        description="Advertise the Wyoming listener over mDNS (_wyoming._tcp), so Home "
        "Assistant discovers it.",
    )  # fmt: skip


class StorageSettings(BaseSettings):
    """Object storage (voxserve.storage)."""

    # Object storage (voxserve.storage): job results; local disk without a bucket
    storage_bucket: str | None = Field(
        None,
        description="S3 bucket for job results; unset: files under VOXSERVE_STORAGE_DIR.",
    )  # fmt: skip
    storage_endpoint: str | None = Field(
        None,
        description="S3 endpoint URL (MinIO, Garage, R2, ...); unset: AWS for the region.",
    )  # fmt: skip
    storage_prefix: str = Field("voxserve/", description="Key prefix inside the bucket.")
    storage_region: str = "us-east-1"
    storage_path_style: bool = Field(
        False,
        description="Address the bucket in the path (http://host/bucket/key), as most "
        "self-hosted stores need; false: virtual-hosted style where the store supports it.",
    )  # fmt: skip
    storage_access_key_id: str | None = Field(None, repr=False)
    storage_secret_access_key: str | None = Field(None, repr=False)
    storage_access_key_file: Path | None = None
    storage_secret_key_file: Path | None = None
    storage_timeout_seconds: float = Field(10.0, gt=0, le=600)
    storage_dir: Path | None = Field(
        None,
        description="Where results are kept without a bucket. Unset: objects/ in "
        "VOXSERVE_CACHE_DIR.",
    )  # fmt: skip


class JobsSettings(BaseSettings):
    """Long-form jobs (voxserve.jobs)."""

    # Long-form jobs (voxserve.jobs)
    jobs_max_input_bytes: int = Field(
        2 * 2**20, ge=1024, le=256 * 2**20,
        description="Largest job text (UTF-8 bytes, the JSON input or the uploaded file).",
    )  # fmt: skip
    jobs_chunk_chars: int = Field(
        1500, ge=100, le=100_000,
        description="Characters of normalized text per chunk (whole sentences): the unit a "
        "job is synthesized, stored and retried in.",
    )  # fmt: skip
    jobs_workers: int = Field(
        0, ge=0, le=256,
        description="Chunks one server synthesizes at once; 0: one per inference lane but "
        "one (speech keeps a lane of its own), at least one.",
    )  # fmt: skip
    jobs_url_seconds: float = Field(
        3600, gt=0, le=7 * 86_400, description="How long a result's download URL is valid."
    )
    jobs_queue: Literal["auto", "local", "redis"] = Field(
        "auto",
        description="Where job chunks wait: 'local' (this process), 'redis' (any replica on "
        "VOXSERVE_JOBS_REDIS_URL takes them); auto: redis when VOXSERVE_JOBS_REDIS_URL is set.",
    )
    jobs_redis_url: str | None = Field(
        None, repr=False,
        description="Redis of the distributed job queue and job state (docs/jobs.md).",
    )  # fmt: skip
    jobs_lease_seconds: float = Field(
        30, ge=1, le=3600,
        description="A chunk whose replica stopped renewing it for this long (killed) is "
        "taken by another replica.",
    )  # fmt: skip
