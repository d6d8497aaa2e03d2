"""Caching of complete synthesis results: memory, disk, Redis, or memory in front of Redis.

``build_cache(settings)`` returns the configured cache, already guarded (failures become
misses), or None when caching is off.
"""

from __future__ import annotations

from voxserve.cache.base import Cache, CircuitBreaker, GuardedCache
from voxserve.cache.disk import DiskCache
from voxserve.cache.memory import MemoryCache
from voxserve.cache.tiered import TieredCache
from voxserve.errors import ConfigError
from voxserve.settings import Settings

AnyCache = GuardedCache | TieredCache

__all__ = [
    "AnyCache",
    "Cache",
    "CircuitBreaker",
    "DiskCache",
    "GuardedCache",
    "MemoryCache",
    "TieredCache",
    "build_cache",
]


def _redis(settings: Settings) -> GuardedCache:
    from voxserve.cache.redis import RedisCache

    assert settings.cache_url is not None  # checked by Settings
    password = None
    if settings.cache_password_file is not None:
        try:
            password = settings.cache_password_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"Cannot read VOXSERVE_CACHE_PASSWORD_FILE={settings.cache_password_file}: "
                f"{exc.strerror}.",
                param="VOXSERVE_CACHE_PASSWORD_FILE",
            ) from exc
    backend = RedisCache(
        settings.cache_url,
        prefix=settings.cache_prefix,
        timeout=settings.cache_timeout_ms / 1000,
        password=password,
    )
    return GuardedCache(
        backend, max_entry_bytes=settings.cache_max_entry_bytes, ttl=settings.cache_ttl or None
    )


def build_cache(settings: Settings) -> AnyCache | None:
    """The cache the settings ask for, or None for ``VOXSERVE_CACHE=off``."""
    limit = settings.cache_max_entry_bytes
    if settings.cache == "off":
        return None
    if settings.cache == "memory":
        return GuardedCache(MemoryCache(settings.cache_max_bytes), max_entry_bytes=limit)
    if settings.cache == "disk":
        disk = DiskCache(settings.cache_dir, settings.cache_max_bytes)
        return GuardedCache(disk, max_entry_bytes=limit)
    if settings.cache == "redis":
        return _redis(settings)
    front = GuardedCache(MemoryCache(settings.cache_max_bytes), max_entry_bytes=limit)
    return TieredCache(front, _redis(settings))
