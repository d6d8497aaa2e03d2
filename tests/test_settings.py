"""Tests for voxserve.settings: defaults, VOXSERVE_* variables, the seed's aliases, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from voxserve.cpus import cgroup_cpu_limit, usable_cores
from voxserve.errors import ConfigError
from voxserve.settings import DEFAULT_VOICE, Settings, env_names

pytestmark = pytest.mark.inprocess


SEED_ALIASES = ("TTS_BATCH_SIZE", "MODEL_PATH", "REDIS_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No voxserve variable from the developer's shell or CI, and no real secret file."""
    for name in list(os.environ):
        upper = name.upper()
        if (
            upper.startswith("VOXSERVE_")
            or upper in SEED_ALIASES
            or upper in {f.upper() for f in Settings.model_fields}
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VOXSERVE_API_KEY_FILE", str(tmp_path / "no-such-key-file"))


def test_defaults() -> None:
    s = Settings.load()
    assert s.default_voice == DEFAULT_VOICE == "en_US-joe-medium"
    assert s.voices_dir is None
    assert s.voice_map == {}
    assert s.espeak is True
    assert s.host == "127.0.0.1"
    assert s.port == 5002
    assert s.metrics_port == 8000
    assert s.device == "auto"
    assert s.batch_size == 4
    assert s.threads == 0
    assert s.max_input_chars == 4096
    assert s.cache == "memory"
    assert s.cache_url is None
    assert s.preload == "all"
    assert s.log_level == "INFO"
    assert s.resolved_api_keys() == frozenset()
    assert s.lexicon == ()
    assert s.names_lexicon is True


def test_voxserve_variables_set_fields(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOXSERVE_PORT", "6001")
    monkeypatch.setenv("VOXSERVE_HOST", "0.0.0.0")
    monkeypatch.setenv("VOXSERVE_DEVICE", "cpu")
    monkeypatch.setenv("VOXSERVE_BATCH_SIZE", "16")
    monkeypatch.setenv("VOXSERVE_VOICES_DIR", str(tmp_path))
    monkeypatch.setenv("VOXSERVE_VOICE_MAP", '{"nova": "espeak-de"}')
    monkeypatch.setenv("VOXSERVE_ESPEAK", "false")
    monkeypatch.setenv("VOXSERVE_LOG_LEVEL", "debug")
    monkeypatch.setenv("VOXSERVE_CACHE", "disk")
    monkeypatch.setenv("VOXSERVE_LEXICON", "a.txt, b.txt")
    monkeypatch.setenv("VOXSERVE_NAMES_LEXICON", "false")
    s = Settings.load()
    assert s.port == 6001
    assert s.host == "0.0.0.0"
    assert s.device == "cpu"
    assert s.batch_size == 16
    assert s.voices_dir == tmp_path
    assert s.voice_map == {"nova": "espeak-de"}
    assert s.espeak is False
    assert s.log_level == "DEBUG"  # case-insensitive
    assert s.cache == "disk"
    assert s.lexicon == (Path("a.txt"), Path("b.txt"))
    assert s.names_lexicon is False


def test_load_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSERVE_PORT", "6001")
    assert Settings.load(port=7002).port == 7002


def test_seed_alias_tts_batch_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTS_BATCH_SIZE", "8")
    assert Settings.load().batch_size == 8


def test_seed_alias_model_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODEL_PATH", str(tmp_path))
    assert Settings.load().voices_dir == tmp_path


def test_seed_alias_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    assert Settings.load().cache_url == "redis://cache:6379/0"


def test_env_names_list_the_canonical_variable_first() -> None:
    assert env_names("batch_size") == ["VOXSERVE_BATCH_SIZE", "TTS_BATCH_SIZE"]
    assert env_names("voices_dir") == ["VOXSERVE_VOICES_DIR", "MODEL_PATH"]
    assert env_names("cache_url") == ["VOXSERVE_CACHE_URL", "REDIS_URL"]
    assert env_names("port") == ["VOXSERVE_PORT"]


def test_bad_port_names_voxserve_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSERVE_PORT", "abc")
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert info.value.param == "VOXSERVE_PORT"
    assert "VOXSERVE_PORT" in info.value.message
    assert "'abc'" in info.value.message


def test_bad_seed_alias_names_the_alias_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """TTS_BATCH_SIZE=0: the message names TTS_BATCH_SIZE, not VOXSERVE_BATCH_SIZE,
    which the user never heard of."""
    monkeypatch.setenv("TTS_BATCH_SIZE", "0")
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert info.value.param == "TTS_BATCH_SIZE"
    assert "TTS_BATCH_SIZE" in info.value.message
    assert "VOXSERVE_BATCH_SIZE" not in info.value.message
    assert "greater than or equal to 1" in info.value.message


def test_bad_device_names_voxserve_device_and_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSERVE_DEVICE", "tpu")
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert info.value.param == "VOXSERVE_DEVICE"
    assert "'tpu'" in info.value.message
    for choice in ("auto", "cpu", "cuda"):
        assert choice in info.value.message


def test_every_bad_variable_is_named_in_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSERVE_PORT", "abc")
    monkeypatch.setenv("VOXSERVE_MAX_QUEUE", "0")
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert "VOXSERVE_PORT" in info.value.message
    assert "VOXSERVE_MAX_QUEUE" in info.value.message


def test_trusted_proxies_default_to_none_and_read_ips_and_networks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings.load().trusted_proxies == ""
    monkeypatch.setenv("VOXSERVE_TRUSTED_PROXIES", " 10.0.0.0/8, 127.0.0.1,fd00::/8 ")
    assert Settings.load().trusted_proxies == "10.0.0.0/8,127.0.0.1,fd00::/8"
    monkeypatch.setenv("VOXSERVE_TRUSTED_PROXIES", "*")
    assert Settings.load().trusted_proxies == "*"


@pytest.mark.parametrize("value", ["nginx", "10.0.0.1/8", "*,10.0.0.1"])
def test_a_trusted_proxy_uvicorn_would_never_match_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """uvicorn keeps a name, a network with host bits, or '*' in a list as a literal that
    never matches a peer: the proxy would silently not be trusted."""
    monkeypatch.setenv("VOXSERVE_TRUSTED_PROXIES", value)
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert info.value.param == "VOXSERVE_TRUSTED_PROXIES"
    assert "not an IP address or network" in info.value.message


def test_redis_cache_without_a_url_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSERVE_CACHE", "redis")
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert "VOXSERVE_CACHE_URL or REDIS_URL" in info.value.message


def test_a_bad_redis_url_names_redis_url_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The URL may hold a password, so the message names the variable, not the value."""
    monkeypatch.setenv("REDIS_URL", "http://:hunter2@cache:6379/0")
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert info.value.param == "REDIS_URL"
    assert "redis://" in info.value.message
    assert "hunter2" not in info.value.message


def test_a_cross_field_error_does_not_echo_other_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSERVE_API_KEYS", "sk-very-secret")
    monkeypatch.setenv("VOXSERVE_CACHE", "redis")
    with pytest.raises(ConfigError) as info:
        Settings.load()
    assert "sk-very-secret" not in info.value.message
    assert "?" not in info.value.message


def test_unparseable_voice_map_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSERVE_VOICE_MAP", "nova=en_US-joe-medium")
    with pytest.raises(ConfigError, match="VOXSERVE_VOICE_MAP"):
        Settings.load()


def test_generic_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8080")
    monkeypatch.setenv("DEVICE", "cuda")
    s = Settings.load()
    assert (s.port, s.device) == (5002, "auto")


def test_api_keys_from_the_environment_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSERVE_API_KEYS", "key-one, key-two,,key-three ")
    assert Settings.load().resolved_api_keys() == {"key-one", "key-two", "key-three"}


def test_api_keys_from_a_key_file_ignore_comments_and_blank_lines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "tts_api_key"
    key_file.write_text("# keys for the staging clients\nfile-key-1\n\n  file-key-2  \n#old-key\n")
    monkeypatch.setenv("VOXSERVE_API_KEY_FILE", str(key_file))
    monkeypatch.setenv("VOXSERVE_API_KEYS", "env-key")
    assert Settings.load().resolved_api_keys() == {"env-key", "file-key-1", "file-key-2"}


def test_a_missing_key_file_means_no_keys_from_it(tmp_path: Path) -> None:
    s = Settings.load(api_key_file=tmp_path / "absent", api_keys="only")
    assert s.resolved_api_keys() == {"only"}


def test_api_keys_are_not_shown_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSERVE_API_KEYS", "super-secret-key")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@cache:6379/0")
    text = repr(Settings.load())
    assert "super-secret-key" not in text
    assert "hunter2" not in text


def test_resolved_threads_uses_the_setting_when_given() -> None:
    assert Settings.load(threads=3).resolved_threads() == 3


def test_resolved_threads_defaults_to_the_cores_this_process_may_use() -> None:
    assert Settings.load().resolved_threads() == usable_cores()
    assert usable_cores() >= 1
    if hasattr(os, "sched_getaffinity"):
        assert usable_cores() <= len(os.sched_getaffinity(0))


def test_lanes_default_to_one_per_core_of_the_threads_setting() -> None:
    assert Settings.load(threads=3).resolved_lanes() == 3
    assert Settings.load(threads=1).resolved_lanes() == 1  # compose: 1 core per replica
    assert Settings.load().resolved_lanes() == usable_cores()


def test_inference_workers_set_the_lanes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSERVE_INFERENCE_WORKERS", "1")
    assert Settings.load(threads=4).resolved_lanes() == 1


def test_negative_inference_workers_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSERVE_INFERENCE_WORKERS", "-1")
    with pytest.raises(ConfigError, match="VOXSERVE_INFERENCE_WORKERS") as info:
        Settings.load()
    assert info.value.param == "VOXSERVE_INFERENCE_WORKERS"


@pytest.mark.parametrize(
    ("cpu_max", "cores"),
    [
        ("max 100000", None),  # no limit
        ("200000 100000", 2),  # --cpus 2
        ("150000 100000", 2),  # --cpus 1.5: rounded up
        ("50000 100000", 1),  # half a core still gets one lane
        ("", None),
        ("garbage", None),
        ("-1 100000", None),
        ("100000 0", None),
        ("a b", None),
    ],
)
def test_cgroup_cpu_limit_reads_cpu_max(cpu_max: str, cores: int | None) -> None:
    assert cgroup_cpu_limit(cpu_max) == cores


def test_a_redis_url_alone_turns_on_the_tiered_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed's configuration sets only REDIS_URL: a configured Redis is used."""
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    assert Settings.load().cache == "tiered"
    monkeypatch.setenv("VOXSERVE_CACHE", "memory")  # said explicitly: kept
    assert Settings.load().cache == "memory"
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.delenv("VOXSERVE_CACHE")
    assert Settings.load().cache == "memory"


def test_lanes_are_named_lanes_and_the_old_name_still_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOXSERVE_LANES", "3")
    assert Settings.load().resolved_lanes() == 3
    monkeypatch.delenv("VOXSERVE_LANES")
    monkeypatch.setenv("VOXSERVE_INFERENCE_WORKERS", "2")
    assert Settings.load().resolved_lanes() == 2
    assert env_names("lanes") == ["VOXSERVE_LANES", "VOXSERVE_INFERENCE_WORKERS"]
