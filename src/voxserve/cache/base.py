"""The cache protocol and the guard that turns every backend failure into a miss.

A cache maps a key to the complete encoded audio of one request. The key is the plan's
(:meth:`voxserve.synthesizer.Plan.cache_key`): the cache knows nothing of what it hashes.
"""

from __future__ import annotations

import logging
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

from voxserve.errors import CacheUnavailable

log = logging.getLogger(__name__)

#: Every stored value starts with this magic and a CRC-32 of the audio, so an entry that
#: was truncated, overwritten by another program or mangled is detected and ignored.
_MAGIC = b"VXS1"
_HEADER = struct.Struct("<4sI")


class CorruptEntry(ValueError):
    """A cached value failed its integrity check."""


def frame(value: bytes) -> bytes:
    return _HEADER.pack(_MAGIC, zlib.crc32(value)) + value


def unframe(blob: bytes) -> bytes:
    if len(blob) < _HEADER.size:
        raise CorruptEntry("entry shorter than its header")
    magic, crc = _HEADER.unpack_from(blob)
    value = blob[_HEADER.size :]
    if magic != _MAGIC or zlib.crc32(value) != crc:
        raise CorruptEntry("entry failed its integrity check")
    return value


@runtime_checkable
class Cache(Protocol):
    """An async byte store. Implementations may raise; :class:`GuardedCache` wraps them."""

    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    async def clear(self) -> int:
        """Remove every entry; returns how many were removed (when known)."""
        ...

    async def stats(self) -> dict[str, int | float | str]: ...

    async def close(self) -> None: ...


class CircuitBreaker:
    """Stops calling a failing backend for ``backoff`` seconds after ``threshold`` failures.

    The back-off doubles on each failed retry up to ``max_backoff`` and resets on success.
    """

    def __init__(self, threshold: int = 3, backoff: float = 1.0, max_backoff: float = 30.0) -> None:
        self.threshold = threshold
        self.base_backoff = backoff
        self.max_backoff = max_backoff
        self.failures = 0
        self.backoff = backoff
        self.open_until = 0.0

    def allow(self, now: float) -> bool:
        return now >= self.open_until

    def success(self) -> None:
        self.failures = 0
        self.backoff = self.base_backoff
        self.open_until = 0.0

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.open_until = now + self.backoff
            self.backoff = min(self.backoff * 2, self.max_backoff)

    @property
    def state(self) -> str:
        return "open" if time.monotonic() < self.open_until else "closed"


class GuardedCache:
    """Wraps a backend so that no failure reaches a request.

    Every error and timeout becomes a miss (or a skipped write); it is counted, logged at
    most once per ``log_interval`` seconds, and feeds a circuit breaker so a dead backend
    is not hammered. Entries larger than ``max_entry_bytes`` are not stored.
    """

    def __init__(
        self,
        backend: Cache,
        *,
        max_entry_bytes: int,
        ttl: float | None = None,
        breaker: CircuitBreaker | None = None,
        log_interval: float = 30.0,
    ) -> None:
        self.backend = backend
        self.name = backend.name
        self.max_entry_bytes = max_entry_bytes
        self.ttl = ttl
        self.breaker = breaker or CircuitBreaker()
        self.log_interval = log_interval
        self.errors = 0
        self._last_log = float("-inf")
        #: Called with (backend name, operation) on every failure, e.g. to count it.
        self.on_error: Callable[[str, str], None] | None = None

    def _failed(self, operation: str, exc: BaseException, *, trip: bool = True) -> None:
        now = time.monotonic()
        self.errors += 1
        if self.on_error is not None:
            self.on_error(self.name, operation)
        if trip:
            self.breaker.failure(now)
        if now - self._last_log >= self.log_interval:
            self._last_log = now
            log.warning(
                "cache %s %s failed (%s: %s); serving without it (%d failures so far)",
                self.name, operation, type(exc).__name__, exc, self.errors,
            )  # fmt: skip

    async def get(self, key: str) -> bytes | None:
        if not self.breaker.allow(time.monotonic()):
            return None
        try:
            blob = await self.backend.get(key)
        except Exception as exc:  # every backend failure is a miss
            self._failed("read", exc)
            return None
        self._recovered()
        if blob is None:
            return None
        try:
            return unframe(blob)
        except CorruptEntry as exc:
            # Bad data under one key says nothing about the backend's health: count it,
            # but leave the breaker alone (the next write replaces the entry).
            self._failed("read", exc, trip=False)
            return None

    async def set(self, key: str, value: bytes) -> bool:
        """Store ``value``; False when it was too large, the backend failed or is open."""
        if len(value) > self.max_entry_bytes or not self.breaker.allow(time.monotonic()):
            return False
        try:
            await self.backend.set(key, frame(value), self.ttl)
        except Exception as exc:
            self._failed("write", exc)
            return False
        self._recovered()
        return True

    def _recovered(self) -> None:
        if self.breaker.failures >= self.breaker.threshold:
            log.warning(
                "cache %s answers again after %d failures", self.name, self.breaker.failures
            )
        self.breaker.success()

    def guards(self) -> list[GuardedCache]:
        """The guarded backends behind this cache (one here; two in a tiered cache)."""
        return [self]

    async def clear(self) -> int:
        """Remove every entry. Unlike reads and writes, a failure here is the caller's
        to see: CacheUnavailable names the backend."""
        with self._unavailable("clear"):
            return await self.backend.clear()

    async def stats(self) -> dict[str, int | float | str]:
        with self._unavailable("stats"):
            stats = await self.backend.stats()
        return {**stats, "errors": self.errors, "breaker": self.breaker.state}

    @contextmanager
    def _unavailable(self, operation: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            raise CacheUnavailable(
                f"The {self.name} cache failed to {operation}: {type(exc).__name__}: {exc}. "
                "Check VOXSERVE_CACHE_URL (or REDIS_URL) and that the server is reachable.",
                param="VOXSERVE_CACHE_URL",
            ) from exc

    async def close(self) -> None:
        try:
            await self.backend.close()
        except Exception as exc:
            log.warning("closing cache %s failed: %s", self.name, exc)
