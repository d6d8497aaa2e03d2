"""Redis backend (redis.asyncio): shared by every replica, with TTLs and a key prefix.

Timeouts are short (tens of milliseconds) on purpose: a slow Redis must cost a request
no more than a miss would. Failures surface as exceptions to :class:`GuardedCache`, which
turns them into misses and trips its circuit breaker.
"""

from __future__ import annotations

import re
from typing import Any

from redis.asyncio import Redis


class RedisCache:
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "voxserve:",
        timeout: float = 0.05,
        password: str | None = None,
        max_connections: int = 32,
    ) -> None:
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "max_connections": max_connections,
            "retry_on_timeout": False,
        }
        if password is not None:
            options["password"] = password
        self._redis: Redis = Redis.from_url(url, **options)
        self.prefix = prefix
        # SCAN MATCH is a glob: escape the prefix so "tenant[1]:" never matches "tenant1:".
        self._pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(self.prefix + key)
        if value is None or isinstance(value, bytes):
            return value
        raise TypeError(f"Redis returned {type(value).__name__}, not bytes")

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = int(ttl * 1000) if ttl else None
        await self._redis.set(self.prefix + key, value, px=px)

    async def clear(self) -> int:
        removed = 0
        batch: list[bytes] = []
        async for key in self._redis.scan_iter(match=self._pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                removed += await self._redis.delete(*batch)
                batch = []
        if batch:
            removed += await self._redis.delete(*batch)
        return removed

    async def stats(self) -> dict[str, int | float | str]:
        entries = 0
        async for _ in self._redis.scan_iter(match=self._pattern, count=1000):
            entries += 1
        memory = await self._redis.info("memory")
        return {
            "backend": self.name,
            "entries": entries,
            "used_memory": int(memory.get("used_memory", 0)),
            "prefix": self.prefix,
        }

    async def close(self) -> None:
        await self._redis.aclose()
