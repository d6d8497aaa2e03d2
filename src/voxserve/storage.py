"""Object storage: job results (and, later, voices) in a bucket, or on local disk.

Two backends behind one small interface, :class:`Storage`:

- :class:`S3Storage`: any store that speaks the S3 API (AWS, R2, GCS interoperability,
  Ceph, Garage, MinIO), through boto3: presigned download URLs, multipart uploads of large
  files (s3transfer), its retries and timeouts. boto3 is the reference client of the API,
  maintained by AWS and used against every compatible store; its calls block, so each
  runs on a thread here.
- :class:`DiskStorage`: a directory, the embedded default when no bucket is configured
  (``VOXSERVE_STORAGE_BUCKET`` unset), so a single server needs nothing new. Its download
  URLs are signed by this server (:class:`UrlSigner`) and served by it.

Errors are translated at this boundary (:func:`_mapped`)::

    VoxserveError
    └── StorageError                 an object could not be read or written
        ├── StorageUnavailable       the store did not answer or failed (retry later)
        └── ObjectMissing            no object under that key
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from voxserve.errors import ObjectMissing, StorageError, StorageUnavailable
from voxserve.settings import Settings

__all__ = ["DiskStorage", "ObjectMissing", "S3Storage", "Storage", "UrlSigner", "build_storage"]

log = logging.getLogger(__name__)

#: Files larger than this are uploaded to S3 in parts of this size (parallel, resumable).
MULTIPART_BYTES = 8 * 2**20


class Storage(Protocol):
    """Objects under string keys ("jobs/<id>/audio.mp3")."""

    name: str

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Upload a file (in parts when large)."""

    async def get_bytes(self, key: str) -> bytes:
        """The object's bytes; ObjectMissing if there is none."""

    async def delete_prefix(self, prefix: str) -> None:
        """Delete every object whose key starts with ``prefix``."""

    async def download_url(self, key: str, *, seconds: float, filename: str) -> str:
        """A URL anyone may GET the object from until it expires in ``seconds``."""

    def close(self) -> None: ...


class UrlSigner:
    """Signs local download paths: ``/downloads/<key>?expires=<unix>&signature=<hmac>``."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _signature(self, key: str, expires: int, filename: str) -> str:
        message = f"{key}\n{expires}\n{filename}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, key: str, *, seconds: float, filename: str) -> str:
        expires = int(time.time() + seconds)
        signature = self._signature(key, expires, filename)
        return (
            f"/downloads/{quote(key)}?expires={expires}&filename={quote(filename)}"
            f"&signature={signature}"
        )

    def check(self, key: str, expires: int, filename: str, signature: str) -> bool:
        """Whether the signature is this server's and has not expired."""
        expected = self._signature(key, expires, filename)
        return hmac.compare_digest(expected, signature) and expires >= time.time()


class DiskStorage:
    """Objects as files under ``root``; download URLs signed by :class:`UrlSigner`."""

    name = "disk"

    def __init__(self, root: Path, signer: UrlSigner) -> None:
        self.root = root
        self.signer = signer

    def path(self, key: str) -> Path:
        """The file of ``key``; ObjectMissing for a key that would leave the root."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()) or not key:
            raise ObjectMissing(f"No object {key!r}.")
        return path

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, key, data)

    def _write(self, key: str, data: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        partial.write_bytes(data)
        partial.replace(path)  # readers never see half an object

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        await asyncio.to_thread(self._copy, key, path)

    def _copy(self, key: str, source: Path) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        shutil.copyfile(source, partial)
        partial.replace(path)

    async def get_bytes(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self.path(key).read_bytes)
        except FileNotFoundError:
            raise ObjectMissing(f"No object {key!r}.") from None

    async def delete_prefix(self, prefix: str) -> None:
        def delete() -> None:
            target = self.path(prefix.rstrip("/"))
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)

        await asyncio.to_thread(delete)

    async def download_url(self, key: str, *, seconds: float, filename: str) -> str:
        return self.signer.sign(key, seconds=seconds, filename=filename)

    def close(self) -> None:
        """Nothing to release."""


class S3Storage:
    """Objects in an S3 bucket, under ``prefix``."""

    name = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        """``client``: a boto3 S3 client (:func:`s3_client` builds one from settings)."""
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return self.prefix + key

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        def put() -> None:
            with _mapped(self.bucket, key):
                self.client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
                )

        await asyncio.to_thread(put)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES
        )

        def upload() -> None:
            with _mapped(self.bucket, key):
                self.client.upload_file(
                    str(path), self.bucket, self._key(key),
                    ExtraArgs={"ContentType": content_type}, Config=config,
                )  # fmt: skip

        await asyncio.to_thread(upload)

    async def get_bytes(self, key: str) -> bytes:
        def get() -> bytes:
            with _mapped(self.bucket, key):
                answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
                data: bytes = answer["Body"].read()
                return data

        return await asyncio.to_thread(get)

    async def delete_prefix(self, prefix: str) -> None:
        def delete() -> None:
            with _mapped(self.bucket, prefix):
                pages = self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=self._key(prefix)
                )
                for page in pages:
                    keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                    if keys:
                        self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})

        await asyncio.to_thread(delete)

    async def download_url(self, key: str, *, seconds: float, filename: str) -> str:
        # Signed locally by botocore: no request to the store.
        with _mapped(self.bucket, key):
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": self._key(key),
                    "ResponseContentDisposition": f'attachment; filename="{filename}"',
                },
                ExpiresIn=int(seconds),
            )
        return url

    def close(self) -> None:
        self.client.close()


@contextlib.contextmanager
def _mapped(bucket: str, key: str) -> Iterator[None]:
    """boto3's and botocore's errors as this module's."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in ("NoSuchKey", "404", "NotFound"):
            raise ObjectMissing(f"No object {key!r} in bucket {bucket!r}.") from None
        if status >= 500 or code in ("SlowDown", "RequestTimeout", "ServiceUnavailable"):
            raise StorageUnavailable(f"Object storage failed ({code}): {exc}") from None
        raise StorageError(
            f"Object storage refused {key!r} in bucket {bucket!r} ({code}): {exc}. Check "
            "VOXSERVE_STORAGE_BUCKET and the credentials."
        ) from None
    except BotoCoreError as exc:  # connection refused, timeouts, ...
        raise StorageUnavailable(f"Object storage is unreachable: {exc}") from None


def _secret(value: str | None, file: Path | None) -> str | None:
    if value:
        return value
    if file is not None and file.is_file():
        return file.read_text().strip() or None
    return None


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client per the VOXSERVE_STORAGE_* settings. Credentials: the settings
    (or their secret files), else boto3's own chain (AWS_* variables, profiles, roles)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:  # pragma: no cover - boto3 is a dependency
        raise StorageError(f"S3 storage needs boto3 (pip install boto3): {exc}") from None
    config = Config(
        region_name=settings.storage_region,
        s3={"addressing_style": "path" if settings.storage_path_style else "auto"},
        connect_timeout=settings.storage_timeout_seconds,
        read_timeout=settings.storage_timeout_seconds,
        retries={"max_attempts": 2, "mode": "standard"},
        signature_version="s3v4",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.storage_endpoint or None,
        aws_access_key_id=_secret(settings.storage_access_key_id, settings.storage_access_key_file),
        aws_secret_access_key=_secret(
            settings.storage_secret_access_key, settings.storage_secret_key_file
        ),
        config=config,
    )


def build_storage(settings: Settings) -> Storage:
    """S3 when ``VOXSERVE_STORAGE_BUCKET`` is set, else a directory on local disk."""
    if settings.storage_bucket:
        return S3Storage(s3_client(settings), settings.storage_bucket, settings.storage_prefix)
    root = settings.storage_dir or settings.cache_dir / "objects"
    root.mkdir(parents=True, exist_ok=True)
    secret = os.urandom(32)  # URLs outlive no restart: one server, one disk
    return DiskStorage(root, UrlSigner(secret))
