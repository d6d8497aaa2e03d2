"""Tests for voxserve.server.openai_voices: OpenAI's voice names and custom-voice ids.

A library of two fake voices (nothing is loaded); the names OpenAI's published document
lists come from tests/openai_spec/audio.json, so a refreshed document with a new built-in
voice or TTS model fails here until voxserve answers it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from fake_server import fake_settings
from fakes import FakeEngine
from openai_document import builtin_voices, tts_models
from voxserve.configs import LibraryConfig, SynthesisConfig
from voxserve.engines.voices import VoiceLibrary
from voxserve.errors import UnknownVoice
from voxserve.server.app import create_app
from voxserve.server.openai_voices import OPENAI_VOICES, aliases, voice_id
from voxserve.server.schemas import MODELS
from voxserve.synthesizer import Synthesizer

pytestmark = pytest.mark.inprocess

DEFAULT = "fake-voice"
OTHER = "other-voice"


@pytest.fixture
def library() -> VoiceLibrary:
    engines = {e.voice.id: e for e in (FakeEngine(voice_id=DEFAULT), FakeEngine(voice_id=OTHER))}
    return VoiceLibrary(
        [e.voice for e in engines.values()],
        LibraryConfig.from_settings(fake_settings()),
        loaders={"fake": lambda voice: engines[voice.id]},
    )


def test_every_builtin_voice_of_the_document_is_an_openai_voice() -> None:
    assert set(builtin_voices()) <= set(OPENAI_VOICES)
    assert {"marin", "cedar", "fable", "onyx", "nova"} <= set(builtin_voices())


def test_every_tts_model_of_the_document_is_accepted() -> None:
    assert set(tts_models()) <= set(MODELS)
    assert "gpt-4o-mini-tts-2025-12-15" in MODELS


@pytest.mark.parametrize("name", [*OPENAI_VOICES, "Alloy", "MARIN"])
def test_an_unmapped_builtin_name_is_the_default_voice(library: VoiceLibrary, name: str) -> None:
    assert voice_id(name, library, {}) == DEFAULT


def test_an_installed_voice_id_is_itself(library: VoiceLibrary) -> None:
    assert voice_id(OTHER, library, {}) == OTHER
    assert voice_id(OTHER, library, {}, custom=True) == OTHER


def test_an_empty_name_is_the_default_voice(library: VoiceLibrary) -> None:
    assert voice_id("", library, {}) == DEFAULT


def test_the_voice_map_picks_the_voice_of_a_name(library: VoiceLibrary) -> None:
    voice_map = {"nova": OTHER, "voice_1234": OTHER}
    assert voice_id("nova", library, voice_map) == OTHER
    assert voice_id("Nova", library, voice_map) == OTHER
    assert voice_id("alloy", library, voice_map) == DEFAULT
    assert voice_id("voice_1234", library, voice_map, custom=True) == OTHER


def test_a_voice_map_entry_to_a_missing_voice_is_unknown(library: VoiceLibrary) -> None:
    with pytest.raises(UnknownVoice) as info:
        voice_id("onyx", library, {"onyx": "en_US-gone-medium"})
    assert info.value.voice == "onyx"
    assert info.value.param == "voice"


@pytest.mark.parametrize("name", ["voice_1234", "alloy", ""])
def test_an_unknown_custom_voice_id_is_unknown(library: VoiceLibrary, name: str) -> None:
    """A custom voice names one voice: a built-in name there falls back to nothing."""
    with pytest.raises(UnknownVoice) as info:
        voice_id(name, library, {}, custom=True)
    assert info.value.param == "voice.id"
    assert set(info.value.available) == {DEFAULT, OTHER}


def test_an_unknown_name_is_unknown(library: VoiceLibrary) -> None:
    with pytest.raises(UnknownVoice) as info:
        voice_id("nobody", library, {})
    assert info.value.param == "voice"


def test_aliases_list_every_builtin_name_and_every_mapped_one(library: VoiceLibrary) -> None:
    found = aliases(library, {"nova": OTHER, "voice_1234": OTHER, "gone": "missing-voice"})
    assert set(found) == {*OPENAI_VOICES, "voice_1234"}
    assert found["nova"] == OTHER
    assert found["voice_1234"] == OTHER
    assert found["alloy"] == DEFAULT


# -- over HTTP ---------------------------------------------------------------------------


@pytest.fixture
def client(library: VoiceLibrary) -> Iterator[TestClient]:
    settings = fake_settings(voice_map={"cedar": OTHER, "voice_1234": OTHER})
    synth = Synthesizer(library, SynthesisConfig.from_settings(settings))
    with TestClient(create_app(settings, synthesizer=synth, registry=CollectorRegistry())) as c:
        yield c


def speak(client: TestClient, voice: object) -> str:
    body = {"model": "tts-1", "input": "Hello.", "voice": voice, "response_format": "wav"}
    response = client.post("/v1/audio/speech", json=body)
    assert response.status_code == 200, response.text
    return response.headers["x-voice"]


def test_speech_maps_builtin_names_and_custom_ids(client: TestClient) -> None:
    assert speak(client, "marin") == DEFAULT
    assert speak(client, "cedar") == OTHER
    assert speak(client, {"id": OTHER}) == OTHER
    assert speak(client, {"id": "voice_1234"}) == OTHER


def test_an_unknown_custom_voice_is_404_in_openai_shape(client: TestClient) -> None:
    body = {"model": "tts-1", "input": "Hello.", "voice": {"id": "voice_9"}}
    response = client.post("/v1/audio/speech", json=body)
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": f"Unknown voice 'voice_9'. Installed voices: {DEFAULT}, {OTHER}.",
            "type": "invalid_request_error",
            "param": "voice.id",
            "code": "voice_not_found",
        }
    }


def test_a_custom_voice_object_with_other_fields_is_422(client: TestClient) -> None:
    """The document's custom-voice object has ``additionalProperties: false``."""
    body = {"input": "Hello.", "voice": {"id": OTHER, "name": "x"}}
    response = client.post("/v1/audio/speech", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_value"


def test_instructions_are_accepted_and_change_nothing(client: TestClient) -> None:
    body = {"model": "gpt-4o-mini-tts", "input": "Hello.", "voice": "alloy",
            "response_format": "wav"}  # fmt: skip
    plain = client.post("/v1/audio/speech", json=body, headers={"Cache-Control": "no-cache"})
    styled = client.post(
        "/v1/audio/speech",
        json={**body, "instructions": "Speak like a pirate, slowly."},
        headers={"Cache-Control": "no-cache"},
    )
    assert plain.status_code == styled.status_code == 200
    assert plain.content == styled.content


def test_the_voice_list_shows_every_builtin_name(client: TestClient) -> None:
    listed = client.get("/v1/audio/voices").json()
    assert set(listed["aliases"]) == {*OPENAI_VOICES, "voice_1234"}
    assert listed["aliases"]["cedar"] == OTHER
