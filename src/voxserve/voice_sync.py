"""Voices from a bucket: ``VOXSERVE_VOICES_URL=s3://bucket/voices/``.

The bucket holds Piper voices as ``X.onnx`` + ``X.onnx.json`` pairs, and beside them a
``SHA256SUMS`` manifest in ``sha256sum``'s format (``<64 hex>  <file name>``, one line a
file)::

    cd voices && sha256sum *.onnx *.onnx.json > SHA256SUMS
    aws s3 cp . s3://bucket/voices/ --recursive   # the voices first, SHA256SUMS last

:func:`sync_voices` copies every pair the manifest lists into the local voices directory
(``Settings.resolved_voices_dir``): a file whose local copy already has the listed digest
is not downloaded again; a downloaded file lands under a temporary name, and only once
both files of the pair have the manifest's SHA-256 are they renamed into place, so the
library never sees half a voice. A pair with a file that does not match (a corrupt or
half-written upload) or that the manifest does not list is refused with a logged reason;
a copy of that voice synced before stays, so a bad upload never takes a working voice
away. The store is reached with the ``VOXSERVE_STORAGE_*`` settings (endpoint,
credentials, path style), as job results are.

Why a manifest and not each object's SHA-256 as metadata: one GET gives every digest
(no HEAD per object), ``sha256sum -c`` checks a local copy with no voxserve, and it
works the same on stores that drop or rename user metadata.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxserve.engines.voices import VoiceLibrary, discover_voices
from voxserve.errors import ObjectMissing, StorageError
from voxserve.settings import Settings
from voxserve.storage import _mapped, s3_client

__all__ = ["MANIFEST", "SyncReport", "parse_manifest", "sha256_file", "sync_voices"]

log = logging.getLogger(__name__)

MANIFEST = "SHA256SUMS"
_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *]?(.+)$")


@dataclass
class SyncReport:
    """What one sync did, voice id by voice id."""

    downloaded: list[str] = field(default_factory=list)
    """Voices whose files were fetched (new or changed)."""
    unchanged: list[str] = field(default_factory=list)
    """Voices whose local copy already had the manifest's digests."""
    refused: dict[str, str] = field(default_factory=dict)
    """Voices not synced, with the reason."""


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → ("bucket", "a/b/")."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, prefix + "/" if prefix else ""


def parse_manifest(text: str) -> dict[str, str]:
    """``sha256sum`` output → {file name: lowercase hex digest}; bad lines are logged."""
    digests = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.match(line.strip())
        if match is None:
            log.warning("%s line %d is not '<sha256>  <file>': %r", MANIFEST, number, line)
            continue
        digests[match.group(2).strip()] = match.group(1).lower()
    return digests


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sync_voices(settings: Settings, *, client: Any = None) -> SyncReport:
    """Copy the voices of ``VOXSERVE_VOICES_URL`` into the voices directory (blocking).

    StorageError (its StorageUnavailable subclass when the store does not answer) when
    the bucket cannot be listed or has no manifest: nothing is changed then.
    """
    assert settings.voices_url, "sync_voices needs VOXSERVE_VOICES_URL"
    directory = settings.resolved_voices_dir()
    assert directory is not None
    bucket, prefix = split_url(settings.voices_url)
    own = client is None
    client = client if client is not None else s3_client(settings)
    try:
        return _sync(client, bucket, prefix, directory, settings.voices_url)
    finally:
        if own:
            client.close()


def reload_voices(settings: Settings, library: VoiceLibrary) -> dict[str, Any]:
    """Sync the bucket's voices (when VOXSERVE_VOICES_URL is set) and find the installed
    voices again (blocking: run it on a thread). The store's errors (StorageError)
    propagate, and then the voices in use stay."""
    answer: dict[str, Any] = {}
    if settings.voices_url:
        report = sync_voices(settings)
        answer["downloaded"] = report.downloaded
        answer["refused"] = report.refused
    voices = discover_voices(settings.resolved_voices_dir(), espeak=settings.espeak)
    answer.update(library.rediscover(voices))
    answer["voices"] = [v.id for v in library.voices()]
    return answer


def _sync(client: Any, bucket: str, prefix: str, directory: Path, url: str) -> SyncReport:
    names = _list(client, bucket, prefix)
    if MANIFEST not in names:
        raise StorageError(
            f"{url} has no {MANIFEST}: no voice synced. Upload the voices' digests "
            f"(sha256sum *.onnx *.onnx.json > {MANIFEST}) beside them."
        )
    with _mapped(bucket, prefix + MANIFEST):
        body = client.get_object(Bucket=bucket, Key=prefix + MANIFEST)["Body"].read()
    digests = parse_manifest(body.decode("utf-8", errors="replace"))
    directory.mkdir(parents=True, exist_ok=True)
    report = SyncReport()
    for model in sorted(n for n in names if n.endswith(".onnx")):
        voice = model.removesuffix(".onnx")
        pair = [model, model + ".json"]
        reason = _check_listed(pair, names, digests)
        if reason is None:
            try:
                fetched = _fetch_pair(
                    client, bucket, prefix, to=directory, pair=pair, digests=digests
                )
            except _Refused as exc:
                reason = str(exc)
            else:
                (report.downloaded if fetched else report.unchanged).append(voice)
                continue
        report.refused[voice] = reason
        kept = all((directory / name).is_file() for name in pair)
        log.error(
            "voice %s from %s refused: %s%s", voice, url, reason,
            "; keeping the copy synced before" if kept else "",
        )  # fmt: skip
    log.info(
        "voices from %s: %d downloaded (%s), %d up to date, %d refused",
        url, len(report.downloaded), ", ".join(report.downloaded) or "none",
        len(report.unchanged), len(report.refused),
    )  # fmt: skip
    return report


class _Refused(Exception):
    pass


def _list(client: Any, bucket: str, prefix: str) -> set[str]:
    """File names directly under ``prefix`` (not in its subfolders)."""
    names: set[str] = set()
    with _mapped(bucket, prefix):
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        )
        for page in pages:
            names.update(o["Key"][len(prefix) :] for o in page.get("Contents", []))
    return names


def _check_listed(pair: list[str], names: set[str], digests: dict[str, str]) -> str | None:
    for name in pair:
        if name not in names:
            return f"no {name} beside it"
        if name not in digests:
            return f"{name} is not listed in {MANIFEST}"
    return None


def _fetch_pair(
    client: Any, bucket: str, prefix: str, *, to: Path, pair: list[str], digests: dict[str, str]
) -> bool:
    """Both files of a voice, checked, then renamed into place; whether any was fetched."""
    partials: dict[Path, Path] = {}
    try:
        for name in pair:
            target = to / name
            if target.is_file() and sha256_file(target) == digests[name]:
                continue
            partial = to / f".{name}.{secrets.token_hex(4)}.part"
            partials[target] = partial
            try:
                with _mapped(bucket, prefix + name):
                    client.download_file(bucket, prefix + name, str(partial))
            except ObjectMissing:
                raise _Refused(f"{name} was deleted from the bucket while syncing") from None
            actual = sha256_file(partial)
            if actual != digests[name]:
                raise _Refused(
                    f"{name} has SHA-256 {actual[:16]}…, {MANIFEST} says "
                    f"{digests[name][:16]}… (corrupt or partly uploaded)"
                )
        for target, partial in partials.items():
            os.replace(partial, target)
        return bool(partials)
    finally:
        for partial in partials.values():
            partial.unlink(missing_ok=True)
