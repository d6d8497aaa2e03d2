"""Memory in front of a shared backend (Redis): hot entries never leave the process."""

from __future__ import annotations

from voxserve.cache.base import GuardedCache


class TieredCache:
    """Reads the front first, then the back (copying a back hit to the front); writes both.

    Each tier is guarded on its own, so a dead Redis still leaves the memory tier working.
    """

    def __init__(self, front: GuardedCache, back: GuardedCache) -> None:
        self.front = front
        self.back = back
        self.name = f"{front.name}+{back.name}"
        self.max_entry_bytes = max(front.max_entry_bytes, back.max_entry_bytes)

    def guards(self) -> list[GuardedCache]:
        return [self.front, self.back]

    async def get(self, key: str) -> bytes | None:
        value = await self.front.get(key)
        if value is None:
            value = await self.back.get(key)
            if value is not None:
                await self.front.set(key, value)
        return value

    async def set(self, key: str, value: bytes) -> bool:
        front = await self.front.set(key, value)
        back = await self.back.set(key, value)
        return front or back

    async def clear(self) -> int:
        await self.front.clear()
        return await self.back.clear()

    async def stats(self) -> dict[str, int | float | str]:
        front = {f"front_{k}": v for k, v in (await self.front.stats()).items()}
        back = {f"back_{k}": v for k, v in (await self.back.stats()).items()}
        return {"backend": self.name, **front, **back}

    async def close(self) -> None:
        await self.front.close()
        await self.back.close()
