"""OpenAI's published description of its audio API, as vendored in tests/openai_spec/audio.json.

scripts/refresh_openai_spec.py writes that file from a copy of the upstream document; this
module reads it for the tests: the raw document, validators for its schemas, and the names
it lists (built-in voices, TTS models, speech-to-text models).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SPEC: dict[str, Any] = json.loads(
    (Path(__file__).parent / "openai_spec" / "audio.json").read_text(encoding="utf-8")
)
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]
SPEECH_REQUEST: dict[str, Any] = SCHEMAS["CreateSpeechRequest"]
TRANSCRIPTION_REQUEST: dict[str, Any] = SCHEMAS["CreateTranscriptionRequest"]
TRANSLATION_REQUEST: dict[str, Any] = SCHEMAS["CreateTranslationRequest"]


def validator(schema_name: str) -> Draft202012Validator:
    """A JSON Schema validator for one of the document's component schemas."""
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": SPEC["components"]}
    return Draft202012Validator(root)


def request_schema(operation: str) -> str:
    """The name of the request body schema of ``operation`` ("POST /audio/speech")."""
    ref: str = next(iter(_request_content(operation).values()))["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def request_media_type(operation: str) -> str:
    """How ``operation``'s body is sent: application/json or multipart/form-data."""
    return next(iter(_request_content(operation)))


def _request_content(operation: str) -> dict[str, Any]:
    method, path = operation.split(" ", 1)
    content: dict[str, Any] = SPEC["paths"][path][method.lower()]["requestBody"]["content"]
    return content


def open_enum(schema: dict[str, Any]) -> list[str]:
    """The names listed by one of OpenAI's open enums: ``anyOf: [{type: string},
    {type: string, enum: [...]}]`` (any string is valid, these are the known ones)."""
    options = schema["anyOf"]
    assert options[0] == {"type": "string"}, options
    names: list[str] = options[1]["enum"]
    return names


def tts_models() -> list[str]:
    """The TTS model names the speech request lists."""
    return open_enum(SPEECH_REQUEST["properties"]["model"])


def transcription_models() -> list[str]:
    """The speech-to-text model names the transcription request lists."""
    return open_enum(TRANSCRIPTION_REQUEST["properties"]["model"])


def translation_models() -> list[str]:
    """The model names the translation request lists."""
    return open_enum(TRANSLATION_REQUEST["properties"]["model"])


def builtin_voices() -> list[str]:
    """OpenAI's built-in voice names: those of ``VoiceIdsShared``'s enum and those the speech
    request's ``voice`` description names ("Supported built-in voices are `alloy`, ...");
    the two lists differ in the document."""
    description = SPEECH_REQUEST["properties"]["voice"]["description"]
    sentence = description.split("Supported built-in voices are", 1)[1].split(".", 1)[0]
    described = re.findall(r"`([a-z]+)`", sentence)
    assert described, description
    return sorted({*described, *open_enum(SCHEMAS["VoiceIdsShared"])})


def named_values_only(node: Any) -> Any:
    """``node`` with every open enum (see :func:`open_enum`) narrowed to the names it lists."""
    if isinstance(node, list):
        return [named_values_only(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if (
        isinstance(options, list)
        and len(options) == 2
        and options[0] == {"type": "string"}
        and "enum" in options[1]
    ):
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return {**rest, **options[1]}
    return {key: named_values_only(value) for key, value in node.items()}
