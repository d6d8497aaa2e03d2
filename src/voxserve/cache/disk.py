"""A directory of files bounded by bytes: survives restarts, can be shared by processes.

Each entry is one file named by its key (``ab/abcdef...``), written to a temporary name
and renamed, so a reader never sees half a file. Reads refresh the file's mtime; when the
directory grows past ``max_bytes`` the least recently used files are deleted.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path


class DiskCache:
    name = "disk"

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._size = sum(f.stat().st_size for f in self._files())
        self._lock = asyncio.Lock()

    def _files(self) -> list[Path]:
        return [
            p for p in self.directory.glob("??/*") if p.is_file() and not p.name.startswith(".")
        ]

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / key

    def _read(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        os.utime(path)  # least recently *used*, not written
        return data

    def _write(self, key: str, value: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(value)
            old = path.stat().st_size if path.exists() else 0
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._size += len(value) - old
        if self._size > self.max_bytes:
            self._evict()

    def _evict(self) -> None:
        files = sorted(self._files(), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)  # other processes may have written too
        for path in files:
            if total <= self.max_bytes * 0.9:  # leave headroom so we don't evict on every write
                break
            size = path.stat().st_size
            path.unlink(missing_ok=True)
            total -= size
        self._size = total

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._read, key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        if len(value) > self.max_bytes:
            return
        async with self._lock:
            await asyncio.to_thread(self._write, key, value)

    def _clear(self) -> int:
        files = self._files()
        for path in files:
            path.unlink(missing_ok=True)
        self._size = 0
        return len(files)

    async def clear(self) -> int:
        async with self._lock:
            return await asyncio.to_thread(self._clear)

    async def stats(self) -> dict[str, int | float | str]:
        files = await asyncio.to_thread(self._files)
        return {
            "backend": self.name,
            "entries": len(files),
            "bytes": self._size,
            "max_bytes": self.max_bytes,
            "directory": str(self.directory),
        }

    async def close(self) -> None:
        """Nothing to release: every operation opens and closes its own file."""
