"""The cache backends (voxserve.cache) against real stores: memory, a directory, a real
``redis-server`` (tests/redis_server.py) and memory in front of Redis.

Each test drives its cache inside one ``asyncio.run`` (pytest-asyncio is not installed;
a redis.asyncio pool belongs to the loop that opened it). Redis tests share one server
per module and isolate themselves with a unique key prefix; tests that kill, pause or
restart Redis get a server of their own. Values are stored framed (8 bytes of magic and
CRC-32 in front), so a backend's byte counts are ``len(value) + FRAME``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from redis_server import RedisServer
from voxserve.cache import (
    AnyCache,
    CircuitBreaker,
    DiskCache,
    GuardedCache,
    MemoryCache,
    TieredCache,
    build_cache,
)
from voxserve.cache.base import frame
from voxserve.cache.redis import RedisCache
from voxserve.plan import Plan
from voxserve.settings import Settings
from voxserve.synthesizer import Synthesizer
from voxserve.types import SynthesisParams, SynthesisRequest

T = TypeVar("T")
FRAME = 8
"""Bytes the integrity frame adds to every stored value."""
BACKENDS = ("memory", "disk", "redis", "tiered")
#: A call against a dead or frozen Redis must cost about a timeout, never seconds.
QUICK_S = 0.5

SettingsFor = Callable[..., Settings]


def key(n: object) -> str:
    """A key shaped like the real ones (sha256 hex)."""
    return hashlib.sha256(str(n).encode()).hexdigest()


def payload(n: object, size: int = 1000) -> bytes:
    """``size`` bytes that differ for every ``n``."""
    seed = hashlib.sha256(str(n).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def run(cache: AnyCache, body: Callable[[AnyCache], Awaitable[T]]) -> T:
    """Run ``body(cache)`` in a fresh event loop and close the cache in that loop."""

    async def main() -> T:
        try:
            return await asyncio.wait_for(body(cache), timeout=60)
        finally:
            await cache.close()

    return asyncio.run(main())


def built(settings: Settings) -> AnyCache:
    cache = build_cache(settings)
    assert cache is not None
    return cache


def disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("??/*") if p.is_file())


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis this test alone may kill, pause or restart."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def settings_for(tmp_path: Path, redis_server: RedisServer) -> SettingsFor:
    """``settings_for(kind, **fields)``: Settings for one backend, isolated to this test
    (its own directory; its own Redis prefix on the module's server unless ``cache_url``
    is given)."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"

    def make(kind: str, **fields: Any) -> Settings:
        values: dict[str, Any] = {
            "cache": kind,
            "cache_dir": tmp_path / "disk",
            "cache_url": redis_server.url,
            "cache_prefix": prefix,
            "espeak": False,
        }
        values.update(fields)
        return Settings(**values)

    return make


# -- every backend ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_every_backend_misses_then_hits_with_the_identical_bytes(
    kind: str, settings_for: SettingsFor
) -> None:
    value = payload("audio", 50_000)

    async def body(cache: AnyCache) -> None:
        assert await cache.get(key(1)) is None
        assert await cache.set(key(1), value) is True
        assert await cache.get(key(1)) == value
        assert await cache.get(key(2)) is None  # another key is still a miss

    run(built(settings_for(kind)), body)


@pytest.mark.parametrize("kind", BACKENDS)
def test_entries_over_max_entry_bytes_are_refused_and_not_stored(
    kind: str, settings_for: SettingsFor
) -> None:
    async def body(cache: AnyCache) -> None:
        assert await cache.set(key("big"), payload("big", 1001)) is False
        assert await cache.get(key("big")) is None
        assert await cache.set(key("fits"), payload("fits", 1000)) is True
        assert await cache.get(key("fits")) == payload("fits", 1000)

    run(built(settings_for(kind, cache_max_entry_bytes=1000)), body)


def test_build_cache_returns_none_when_the_cache_is_off(settings_for: SettingsFor) -> None:
    assert build_cache(settings_for("off")) is None


# -- memory -------------------------------------------------------------------------------


def test_memory_lru_stays_within_max_bytes_over_1000_entries_and_keeps_a_read_entry(
    settings_for: SettingsFor,
) -> None:
    """49 framed 1,000-byte entries fit in 50,000 bytes: after 1,000 writes the survivors
    are the entry read every 10 writes and the 48 newest, and nothing older."""
    max_bytes = 50_000
    capacity = max_bytes // (1000 + FRAME)

    async def body(cache: AnyCache) -> None:
        assert isinstance(cache, GuardedCache)
        assert isinstance(cache.backend, MemoryCache)
        lru = cache.backend
        assert await cache.set(key("hot"), payload("hot"))
        for i in range(1000):
            assert await cache.set(key(i), payload(i))
            assert lru.size <= max_bytes, f"over the bound after write {i}: {lru.size}"
            if i % 10 == 0:
                assert await cache.get(key("hot")) == payload("hot")
        stats = await cache.stats()
        assert stats["entries"] == capacity
        assert stats["bytes"] == capacity * (1000 + FRAME)
        newest = range(1000 - (capacity - 1), 1000)
        assert await cache.get(key(newest.start - 1)) is None
        assert await cache.get(key(0)) is None
        for i in newest:
            assert await cache.get(key(i)) == payload(i)
        assert await cache.get(key("hot")) == payload("hot")

    run(built(settings_for("memory", cache_max_bytes=max_bytes)), body)


# -- disk ---------------------------------------------------------------------------------


def test_disk_stays_within_max_bytes_keeps_a_read_entry_and_survives_a_restart(
    settings_for: SettingsFor, tmp_path: Path
) -> None:
    """Eviction goes by mtime, which reads refresh; a new DiskCache on the same directory
    (a restarted server) finds every surviving entry and keeps the bound."""
    max_bytes = 20_000
    settings = settings_for("disk", cache_max_bytes=max_bytes)
    directory = tmp_path / "disk"

    async def fill(cache: AnyCache) -> set[str]:
        assert await cache.set(key("hot"), payload("hot"))
        for i in range(200):
            assert await cache.set(key(i), payload(i))
            assert disk_bytes(directory) <= max_bytes, f"over the bound after write {i}"
            if i % 5 == 0:
                assert await cache.get(key("hot")) == payload("hot")
        assert await cache.get(key(0)) is None  # the oldest went first
        assert await cache.get(key(199)) == payload(199)
        assert await cache.get(key("hot")) == payload("hot")
        return {p.name for p in directory.glob("??/*")}

    survivors = run(built(settings), fill)
    assert len(survivors) >= 10

    async def after_restart(cache: AnyCache) -> None:
        stats = await cache.stats()
        assert stats["entries"] == len(survivors)
        assert stats["bytes"] == disk_bytes(directory) == len(survivors) * (1000 + FRAME)
        by_key = {key(i): payload(i) for i in range(200)} | {key("hot"): payload("hot")}
        for name in survivors:
            assert await cache.get(name) == by_key[name]
        for i in range(200, 250):
            assert await cache.set(key(i), payload(i))
            assert disk_bytes(directory) <= max_bytes
        assert await cache.get(key(249)) == payload(249)

    run(built(settings), after_restart)


def test_disk_cache_ignores_half_written_temporary_files(tmp_path: Path) -> None:
    """A crash between mkstemp and rename leaves a ``.tmp-*`` file: not an entry."""
    directory = tmp_path / "disk"

    async def body(cache: AnyCache) -> None:
        assert await cache.set(key(1), payload(1))
        (directory / key(1)[:2] / ".tmp-crashed").write_bytes(b"half")
        stats = await cache.stats()
        assert stats["entries"] == 1
        assert await cache.get(key(1)) == payload(1)

    run(GuardedCache(DiskCache(directory, 10_000), max_entry_bytes=10_000), body)


# -- redis --------------------------------------------------------------------------------


def test_redis_entry_expires_after_its_ttl(
    settings_for: SettingsFor, redis_server: RedisServer
) -> None:
    settings = settings_for("redis", cache_ttl=0.2)

    async def body(cache: AnyCache) -> int:
        assert await cache.set(key(1), payload(1))
        with redis_server.client() as plain:
            remaining = plain.pttl(settings.cache_prefix + key(1))
        assert 0 < remaining <= 200
        for attempt in range(50):  # bounded: 50 x 0.1 s
            if await cache.get(key(1)) is None:
                return attempt
            await asyncio.sleep(0.1)
        raise AssertionError("the entry outlived its 0.2 s TTL by 5 s")

    run(built(settings), body)


def test_redis_prefixes_isolate_caches_and_clear_removes_only_its_own(
    settings_for: SettingsFor, redis_server: RedisServer
) -> None:
    a_settings = settings_for("redis", cache_prefix=f"a-{uuid.uuid4().hex[:6]}:")
    b_settings = settings_for("redis", cache_prefix=f"b-{uuid.uuid4().hex[:6]}:")
    foreign = f"foreign-{uuid.uuid4().hex[:6]}"

    async def body(a: AnyCache) -> None:
        b = built(b_settings)
        try:
            assert await a.set(key("only-a"), payload("a"))
            assert await b.get(key("only-a")) is None
            assert await a.set(key("both"), payload("from a"))
            assert await b.set(key("both"), payload("from b"))
            assert await a.get(key("both")) == payload("from a")
            assert await b.get(key("both")) == payload("from b")
            with redis_server.client() as plain:
                plain.set(foreign, b"not ours")
                assert await a.clear() == 2
                assert plain.get(foreign) == b"not ours"
                plain.delete(foreign)
            assert await a.get(key("both")) is None
            assert await b.get(key("both")) == payload("from b")
            assert (await b.stats())["entries"] == 1
        finally:
            await b.close()

    run(built(a_settings), body)


@pytest.mark.parametrize("prefix", ["tenant[1]:", "app*"])
def test_clear_with_glob_characters_in_the_prefix_removes_exactly_its_own_keys(
    prefix: str, settings_for: SettingsFor, redis_server: RedisServer
) -> None:
    neighbour = prefix.replace("[1]", "1").replace("*", "le") + "x"  # tenant1:x, apple:x

    async def body(cache: AnyCache) -> None:
        with redis_server.client() as plain:
            plain.set(neighbour, b"another tenant's entry")
            try:
                assert await cache.set(key(1), payload(1))
                assert await cache.clear() == 1
                assert plain.get(neighbour) == b"another tenant's entry"
                assert plain.exists(prefix + key(1)) == 0
            finally:
                plain.delete(neighbour, prefix + key(1))

    run(built(settings_for("redis", cache_prefix=prefix)), body)


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(lambda: b"written by another program", id="foreign-bytes"),
        pytest.param(lambda: frame(payload(1))[:-1], id="truncated-entry"),
        pytest.param(lambda: b"VXS1\x00\x00\x00\x00" + payload(1), id="wrong-crc"),
        pytest.param(lambda: b"", id="empty"),
    ],
)
def test_garbage_under_a_redis_key_is_a_counted_miss_never_an_exception(
    garbage: Callable[[], bytes], settings_for: SettingsFor, redis_server: RedisServer
) -> None:
    settings = settings_for("redis")

    async def body(cache: AnyCache) -> None:
        assert isinstance(cache, GuardedCache)
        with redis_server.client() as plain:
            plain.set(settings.cache_prefix + key(1), garbage())
        assert await cache.get(key(1)) is None
        assert cache.errors == 1
        assert (await cache.stats())["errors"] == 1
        assert await cache.set(key(1), payload(1))  # a fresh result replaces the garbage
        assert await cache.get(key(1)) == payload(1)

    run(built(settings), body)


def test_a_redis_key_of_the_wrong_type_is_a_counted_miss(
    settings_for: SettingsFor, redis_server: RedisServer
) -> None:
    settings = settings_for("redis")

    async def body(cache: AnyCache) -> None:
        assert isinstance(cache, GuardedCache)
        with redis_server.client() as plain:
            plain.rpush(settings.cache_prefix + key(1), b"a list, not a string")
        assert await cache.get(key(1)) is None
        assert cache.errors == 1

    run(built(settings), body)


def test_killed_redis_answers_quickly_then_the_breaker_stops_calling_it(
    settings_for: SettingsFor, own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused connections are misses and skipped writes, each well under a second; after
    three the breaker opens, and later calls fail without counting another error, i.e.
    without reaching Redis. The failure is logged once, not once per call."""
    settings = settings_for("redis", cache_url=own_redis.url)

    async def body(cache: AnyCache) -> None:
        assert isinstance(cache, GuardedCache)
        assert await cache.set(key(1), payload(1))
        own_redis.kill()
        calls: list[Callable[[], Awaitable[bytes | bool | None]]] = [
            lambda: cache.get(key(1)),
            lambda: cache.set(key(2), payload(2)),
            lambda: cache.get(key(1)),
        ]
        for n, call in enumerate(calls, start=1):
            started = time.perf_counter()
            result = await call()
            assert result in (None, False)
            assert time.perf_counter() - started < QUICK_S
            assert cache.errors == n
        assert cache.breaker.state == "open"
        for _ in range(20):
            started = time.perf_counter()
            assert await cache.get(key(1)) is None
            assert await cache.set(key(3), payload(3)) is False
            assert time.perf_counter() - started < QUICK_S
        assert cache.errors == 3

    with caplog.at_level(logging.WARNING, logger="voxserve.cache.base"):
        run(built(settings), body)
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1
    assert "ConnectionError" in failures[0].getMessage()


def test_paused_redis_timeouts_become_misses_within_the_timeout(
    settings_for: SettingsFor, own_redis: RedisServer
) -> None:
    """SIGSTOP: connections open but nothing answers; each call gives up after
    ``cache_timeout_ms`` (100 ms) plus scheduling slack, then the breaker opens."""
    timeout = 0.1
    settings = settings_for("redis", cache_url=own_redis.url, cache_timeout_ms=timeout * 1000)

    async def body(cache: AnyCache) -> None:
        assert isinstance(cache, GuardedCache)
        assert await cache.set(key(1), payload(1))
        assert await cache.get(key(1)) == payload(1)
        own_redis.pause()
        try:
            for n in range(1, 4):
                started = time.perf_counter()
                assert await cache.get(key(1)) is None
                assert time.perf_counter() - started < timeout + QUICK_S
                assert cache.errors == n
            assert cache.breaker.state == "open"
            assert await cache.set(key(2), payload(2)) is False
            assert cache.errors == 3
        finally:
            own_redis.resume()

    run(built(settings), body)


def test_restarted_redis_serves_hits_again_once_the_breaker_backs_off(
    own_redis: RedisServer,
) -> None:
    """While the breaker is open a live Redis is still not called; after the back-off the
    next call reconnects to the new server and succeeds, which closes the breaker."""
    backend = RedisCache(own_redis.url, prefix="restart:", timeout=0.1)
    cache = GuardedCache(
        backend, max_entry_bytes=10**6, breaker=CircuitBreaker(threshold=3, backoff=2.0)
    )

    async def body(cache: AnyCache) -> None:
        assert isinstance(cache, GuardedCache)
        assert await cache.set(key(1), payload(1))
        own_redis.kill()
        for _ in range(3):
            assert await cache.get(key(1)) is None
        assert cache.breaker.state == "open"
        own_redis.restart()
        assert await cache.set(key(1), payload(1)) is False  # still open: Redis untouched
        assert cache.errors == 3
        with own_redis.client() as plain:
            assert plain.dbsize() == 0
        wait = cache.breaker.open_until - time.monotonic()
        assert wait < 2.0
        await asyncio.sleep(max(wait, 0) + 0.05)
        assert await cache.set(key(1), payload(1)) is True
        assert await cache.get(key(1)) == payload(1)
        assert cache.breaker.state == "closed"
        assert cache.breaker.failures == 0

    run(cache, body)


def test_redis_with_requirepass_works_with_the_password_file(
    settings_for: SettingsFor, tmp_path: Path
) -> None:
    secret = tmp_path / "redis_password"
    secret.write_text("correct horse battery\n")
    with RedisServer(password="correct horse battery") as server:
        settings = settings_for("redis", cache_url=server.url, cache_password_file=secret)

        async def body(cache: AnyCache) -> None:
            assert await cache.set(key(1), payload(1))
            assert await cache.get(key(1)) == payload(1)

        run(built(settings), body)
        with server.client() as plain:
            assert plain.exists(settings.cache_prefix + key(1)) == 1


@pytest.mark.parametrize("password", ["wrong password", None], ids=["wrong", "missing"])
def test_redis_with_a_wrong_or_missing_password_is_a_miss_not_a_crash(
    password: str | None, settings_for: SettingsFor, tmp_path: Path
) -> None:
    fields: dict[str, Any] = {}
    if password is not None:
        secret = tmp_path / "redis_password"
        secret.write_text(password)
        fields["cache_password_file"] = secret
    with RedisServer(password="correct horse battery") as server:
        settings = settings_for("redis", cache_url=server.url, **fields)

        async def body(cache: AnyCache) -> None:
            assert isinstance(cache, GuardedCache)
            assert await cache.set(key(1), payload(1)) is False
            assert await cache.get(key(1)) is None
            assert cache.errors == 2

        run(built(settings), body)
        with server.client() as plain:
            assert plain.dbsize() == 0


# -- tiered -------------------------------------------------------------------------------


def test_tiered_copies_a_redis_hit_into_memory_and_keeps_hitting_when_redis_dies(
    settings_for: SettingsFor, own_redis: RedisServer
) -> None:
    settings = settings_for("tiered", cache_url=own_redis.url)

    async def body(cache: AnyCache) -> None:
        assert isinstance(cache, TieredCache)
        assert await cache.set(key("both"), payload("both"))
        # An entry another replica wrote: only in Redis until this one reads it.
        assert await cache.back.set(key("replica"), payload("replica"))
        assert await cache.front.get(key("replica")) is None
        assert await cache.get(key("replica")) == payload("replica")
        own_redis.kill()
        assert await cache.get(key("both")) == payload("both")
        assert await cache.get(key("replica")) == payload("replica")
        assert await cache.set(key("new"), payload("new")) is True  # the memory tier took it
        assert await cache.get(key("new")) == payload("new")
        assert await cache.get(key("never stored")) is None
        assert cache.back.errors >= 1
        assert cache.front.errors == 0

    run(built(settings), body)


# -- the key ------------------------------------------------------------------------------


BASE = SynthesisRequest(
    "The quick brown fox jumps over the lazy dog.", format="wav", params=SynthesisParams()
)


def with_params(**changes: Any) -> SynthesisRequest:
    return replace(BASE, params=replace(BASE.params, **changes))


def plan_variants(synth: Synthesizer) -> dict[str, tuple[Plan, bool]]:
    """One (plan, streamed) per ingredient of the key, each differing from the base in
    that ingredient alone (sample_rate moves the output rate too, by definition)."""
    base = synth.plan(BASE)
    voice = base.voice
    return {
        "voice": (replace(base, voice=replace(voice, id="en_US-other-medium")), False),
        "engine": (replace(base, voice=replace(voice, engine="espeak")), False),
        "digest": (replace(base, voice=replace(voice, digest="0123456789abcdef")), False),
        "rate": (replace(base, voice=replace(voice, sample_rate=16_000)), False),
        "text": (synth.plan(replace(BASE, text="The quick brown fox jumps over the cat.")), False),
        "format": (synth.plan(replace(BASE, format="mp3")), False),
        "streamed": (base, True),
        "speed": (synth.plan(with_params(speed=1.5)), False),
        "volume": (synth.plan(with_params(volume=0.5)), False),
        "noise_scale": (synth.plan(with_params(noise_scale=0.0)), False),
        "noise_w": (synth.plan(with_params(noise_w=0.0)), False),
        "speaker": (synth.plan(with_params(speaker=0)), False),
        "sample_rate": (synth.plan(with_params(sample_rate=16_000)), False),
        "sentence_silence": (synth.plan(with_params(sentence_silence=0.5)), False),
    }


def test_cache_key_changes_with_every_ingredient_and_each_change_gives_its_own_key(
    piper_synth: Synthesizer,
) -> None:
    base = piper_synth.plan(BASE).cache_key(streamed=False)
    variants = plan_variants(piper_synth)
    keys = {name: plan.cache_key(streamed=s) for name, (plan, s) in variants.items()}
    assert [name for name, k in keys.items() if k == base] == []
    assert len(set(keys.values())) == len(keys)


def test_cache_key_is_equal_for_equal_requests_and_for_texts_that_normalize_alike(
    piper_synth: Synthesizer,
) -> None:
    base = piper_synth.plan(BASE).cache_key(streamed=False)
    assert piper_synth.plan(replace(BASE)).cache_key(streamed=False) == base
    assert piper_synth.plan(with_params(speed=1.0, volume=1.0)).cache_key(streamed=False) == base
    spaced = replace(BASE, text="The  quick brown fox   jumps over the lazy dog.")
    assert piper_synth.plan(spaced).sentences == piper_synth.plan(BASE).sentences
    assert piper_synth.plan(spaced).cache_key(streamed=False) == base
    assert len(base) == 64
    assert set(base) <= set("0123456789abcdef")
