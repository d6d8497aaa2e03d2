"""A real S3-compatible server in a subprocess: moto's standalone server (``moto[server]``).

moto implements the S3 REST API with SigV4 checks, presigned URLs and multipart uploads
(CreateMultipartUpload, UploadPart, CompleteMultipartUpload), which is what voxserve uses.
``S3Server()`` starts it on a free 127.0.0.1 port, creates a bucket, and stops it by PID;
:meth:`S3Server.pause` / :meth:`S3Server.resume` (SIGSTOP / SIGCONT) make a store that
accepts connections and answers nothing, as a store that is down behind a load balancer.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from live import PortTaken, free_port, on_a_free_port, port_taken, terminate

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"


class S3Server:
    """``with S3Server() as s3: Settings(storage_bucket=s3.bucket, **s3.settings())``."""

    def __init__(self, *, bucket: str = "voxserve-test", startup_timeout: float = 30) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self._timeout = startup_timeout
        self._dir = tempfile.TemporaryDirectory(prefix="voxserve-s3-")
        self._log = Path(self._dir.name) / "moto.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def log(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def settings(self) -> dict[str, Any]:
        """The VOXSERVE_STORAGE_* settings that reach this server's bucket."""
        return {
            "storage_bucket": self.bucket,
            "storage_endpoint": self.endpoint,
            "storage_path_style": True,
            "storage_access_key_id": ACCESS_KEY,
            "storage_secret_access_key": SECRET_KEY,
            "storage_timeout_seconds": 1.0,
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )  # fmt: skip

    def start(self) -> S3Server:
        args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                kind = PortTaken if port_taken(self.log) else RuntimeError
                raise kind(f"moto_server exited with {self.process.returncode}:\n{self.log}")
            try:
                # 200 from moto's own page: not another server that took the port
                answered = httpx.get(self.endpoint + "/moto-api/", timeout=1).status_code == 200
            except httpx.TransportError:
                answered = False
            if not answered:
                time.sleep(0.05)
                continue
            client = self.client()
            client.create_bucket(Bucket=self.bucket)
            client.close()
            return self
        self.stop()
        raise RuntimeError(f"moto_server was not ready after {self._timeout}s:\n{self.log}")

    def pause(self) -> None:
        """SIGSTOP: the port stays open, nothing answers; clients time out."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if self.paused:
            self.resume()
        terminate(self.process, grace=5)

    def __enter__(self) -> S3Server:
        return on_a_free_port(self.start, self._move)

    def _move(self, port: int) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._dir.cleanup()
