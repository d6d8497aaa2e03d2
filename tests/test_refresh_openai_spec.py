"""Tests for scripts/refresh_openai_spec.py and the extract it wrote (tests/openai_spec/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from openai_document import SPEC
from scripts_dir import SCRIPTS, load_script

pytestmark = pytest.mark.inprocess

SCRIPT = SCRIPTS / "refresh_openai_spec.py"


def load() -> ModuleType:
    return load_script(SCRIPT.name)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


UPSTREAM: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "OpenAI API", "version": "2.3.0", "license": {"name": "MIT"}},
    "servers": [{"url": "https://example.invalid/v1"}],
    "security": [{"ApiKeyAuth": []}],
    "paths": {
        "/audio/speech": {
            "post": {
                "requestBody": {"content": {"application/json": {"schema": ref("Speech")}}},
                "responses": {"429": {"$ref": "#/components/responses/TooMany"}},
                "x-oaiMeta": {"examples": ["curl ..."]},
            }
        },
        "/chat/completions": {"post": {"requestBody": ref("Chat")}},
    },
    "components": {
        "schemas": {
            "Speech": {"properties": {"voice": ref("Voice")}},
            "Voice": {"anyOf": [{"type": "string"}, ref("Custom")]},
            "Custom": {"properties": {"id": {"type": "string"}}},
            "Chat": {"properties": {}},
            "Error": {"properties": {}},
        },
        "responses": {"TooMany": {"content": {"application/json": {"schema": ref("Error")}}}},
        "securitySchemes": {"ApiKeyAuth": {"type": "http"}, "Admin": {"type": "http"}},
    },
}


def test_extract_keeps_the_audio_paths_and_what_they_reference() -> None:
    spec = load().extract(UPSTREAM)
    assert list(spec["paths"]) == ["/audio/speech"]
    assert "x-oaiMeta" not in spec["paths"]["/audio/speech"]["post"]
    assert "servers" not in spec
    assert set(spec["components"]["schemas"]) == {"Speech", "Voice", "Custom", "Error"}
    assert set(spec["components"]["responses"]) == {"TooMany"}
    assert spec["components"]["securitySchemes"] == {"ApiKeyAuth": {"type": "http"}}
    assert spec["security"] == [{"ApiKeyAuth": []}]


def test_the_script_writes_its_header(tmp_path: Path) -> None:
    upstream = tmp_path / "openapi.json"
    upstream.write_text(json.dumps(UPSTREAM))
    output = tmp_path / "audio.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), str(upstream), "--commit", "abc123", "--date",
         "2026-08-21", "--output", str(output)],
        check=True, capture_output=True,
    )  # fmt: skip
    written = json.loads(output.read_text())
    assert next(iter(written)) == "x-vendored"
    assert written["x-vendored"]["repository"] == "openai/openai-openapi"
    assert written["x-vendored"]["commit"] == "abc123"
    assert written["x-vendored"]["date"] == "2026-08-21"


def test_the_vendored_extract_is_whole() -> None:
    """Every reference in tests/openai_spec/audio.json resolves inside it."""
    script = load()
    for reference in set(script.refs(SPEC)):
        _, kind, name = reference.removeprefix("#/").split("/")
        assert name in SPEC["components"][kind], reference
    assert {"/audio/speech", "/audio/transcriptions", "/audio/translations"} <= set(SPEC["paths"])
    assert len(SPEC["x-vendored"]["commit"]) == 40
