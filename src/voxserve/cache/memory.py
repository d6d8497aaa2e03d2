"""In-process LRU cache bounded by bytes: the default backend."""

from __future__ import annotations

from collections import OrderedDict


class MemoryCache:
    """Least-recently-used entries go first once the total size passes ``max_bytes``.

    Only touched from the event loop thread, with no awaits inside an operation, so it
    needs no lock. TTLs are ignored: entries are immutable and evicted by size.
    """

    name = "memory"

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[str, bytes] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        if len(value) > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._entries[key] = value
        self.size += len(value)
        while self.size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size -= len(evicted)

    async def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        self.size = 0
        return count

    async def stats(self) -> dict[str, int | float | str]:
        return {
            "backend": self.name,
            "entries": len(self._entries),
            "bytes": self.size,
            "max_bytes": self.max_bytes,
        }

    async def close(self) -> None:
        await self.clear()
