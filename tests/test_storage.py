"""voxserve.storage on local disk and on a real S3 server (moto's, on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from s3_server import S3Server
from voxserve.errors import ObjectMissing, StorageUnavailable
from voxserve.settings import Settings
from voxserve.storage import MULTIPART_BYTES, DiskStorage, S3Storage, UrlSigner, build_storage


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        yield server


def s3_storage(s3: S3Server, **overrides: object) -> S3Storage:
    storage = build_storage(Settings(**(s3.settings() | overrides)))
    assert isinstance(storage, S3Storage)
    return storage


def test_disk_is_the_default(tmp_path: Path) -> None:
    storage = build_storage(Settings(cache_dir=tmp_path))
    assert isinstance(storage, DiskStorage)
    assert storage.root == tmp_path / "objects"


def test_disk_round_trip_and_delete(tmp_path: Path) -> None:
    storage = DiskStorage(tmp_path, UrlSigner(b"k"))

    async def run() -> None:
        await storage.put_bytes("jobs/a/1.pcm", b"abc", "application/octet-stream")
        source = tmp_path / "source"
        source.write_bytes(b"x" * 100)
        await storage.put_file("jobs/a/out.mp3", source, "audio/mpeg")
        assert await storage.get_bytes("jobs/a/1.pcm") == b"abc"
        assert await storage.get_bytes("jobs/a/out.mp3") == b"x" * 100
        await storage.delete_prefix("jobs/a/")
        with pytest.raises(ObjectMissing):
            await storage.get_bytes("jobs/a/1.pcm")
        with pytest.raises(ObjectMissing):
            await storage.get_bytes("../outside")

    asyncio.run(run())


def test_signed_urls_expire_and_bind_their_key() -> None:
    signer = UrlSigner(b"secret")
    url = urlsplit(signer.sign("jobs/a/out.mp3", seconds=60, filename="a.mp3"))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    expires = int(query["expires"])
    assert url.path == "/downloads/jobs/a/out.mp3"
    assert signer.check("jobs/a/out.mp3", expires, "a.mp3", query["signature"])
    assert not signer.check("jobs/b/out.mp3", expires, "a.mp3", query["signature"])
    assert not signer.check("jobs/a/out.mp3", expires + 1, "a.mp3", query["signature"])
    assert not UrlSigner(b"other").check("jobs/a/out.mp3", expires, "a.mp3", query["signature"])
    past = urlsplit(signer.sign("k", seconds=-10, filename="f"))
    q = {k: v[0] for k, v in parse_qs(past.query).items()}
    assert not signer.check("k", int(q["expires"]), "f", q["signature"])


def test_s3_round_trip_presigned_and_multipart(s3: S3Server, tmp_path: Path) -> None:
    storage = s3_storage(s3, storage_prefix="p/")
    big = tmp_path / "big"
    data = os.urandom(MULTIPART_BYTES * 2 + 1000)  # three parts
    big.write_bytes(data)

    async def run() -> str:
        await storage.put_bytes("jobs/a/1.pcm", b"abc", "application/octet-stream")
        await storage.put_file("jobs/a/out.mp3", big, "audio/mpeg")
        assert await storage.get_bytes("jobs/a/1.pcm") == b"abc"
        return await storage.download_url("jobs/a/out.mp3", seconds=60, filename="out.mp3")

    url = asyncio.run(run())
    head = s3.client().head_object(Bucket=s3.bucket, Key="p/jobs/a/out.mp3")
    assert head["ContentType"] == "audio/mpeg"
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts
    answer = httpx.get(url)  # no credentials: the signature is the permission
    assert answer.status_code == 200
    assert answer.content == data
    assert "out.mp3" in answer.headers["content-disposition"]
    # (moto checks no signatures without its IAM emulation: a forged one is not tested.)
    assert "X-Amz-Expires=60" in url

    async def delete() -> None:
        await storage.delete_prefix("jobs/a/")
        with pytest.raises(ObjectMissing):
            await storage.get_bytes("jobs/a/1.pcm")

    asyncio.run(delete())
    storage.close()


def test_s3_down_is_unavailable(s3: S3Server) -> None:
    storage = s3_storage(s3, storage_timeout_seconds=0.3)
    s3.pause()
    try:
        with pytest.raises(StorageUnavailable):
            asyncio.run(storage.put_bytes("k", b"v", "text/plain"))
    finally:
        s3.resume()
    asyncio.run(storage.put_bytes("k", b"v", "text/plain"))
    storage.close()


def test_s3_refused_names_the_bucket(s3: S3Server) -> None:
    storage = s3_storage(s3, storage_bucket="no-such-bucket")
    with pytest.raises(Exception, match="no-such-bucket"):
        asyncio.run(storage.put_bytes("k", b"v", "text/plain"))
    storage.close()


def test_credentials_from_secret_files(s3: S3Server, tmp_path: Path) -> None:
    (tmp_path / "id").write_text("test-access-key\n")
    (tmp_path / "secret").write_text("test-secret-key\n")
    storage = s3_storage(
        s3, storage_access_key_id=None, storage_secret_access_key=None,
        storage_access_key_file=tmp_path / "id", storage_secret_key_file=tmp_path / "secret",
    )  # fmt: skip
    credentials = storage.client._request_signer._credentials
    assert credentials.access_key == "test-access-key"
    assert credentials.secret_key == "test-secret-key"
    storage.close()
