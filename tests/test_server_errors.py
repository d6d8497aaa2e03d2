"""Bad input over real HTTP: every refusal has OpenAI's error shape and its documented status.

One real server (tests/live.py) answers the whole module; the last test checks that it
still serves a normal request afterwards and that nothing it logged was a traceback.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import soundfile as sf

from live import LiveServer

SPEECH = "/v1/audio/speech"
MAX_BODY_BYTES = 1_048_576  # VOXSERVE_MAX_BODY_BYTES default
MAX_INPUT_CHARS = 4096  # VOXSERVE_MAX_INPUT_CHARS default
JSON_HEADERS = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # A key file that does not exist: auth stays off even where /run/secrets has one.
    no_keys = tmp_path_factory.mktemp("auth") / "absent"
    with LiveServer({"VOXSERVE_API_KEY_FILE": str(no_keys)}) as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def assert_error(
    response: httpx.Response, status: int, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """Check status and OpenAI's exact error shape; return the inner ``error`` object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert error["message"].strip()
    assert isinstance(error["type"], str)
    assert error["type"]
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error


def json_body_of_size(size: int) -> bytes:
    """A valid ``{"input": "aaa..."}`` JSON body of exactly ``size`` bytes."""
    shell = b'{"input": ""}'
    body = b'{"input": "' + b"a" * (size - len(shell)) + b'"}'
    assert len(body) == size
    return body


# -- input text ---------------------------------------------------------------------------


def test_empty_input_is_400_naming_input(client: httpx.Client) -> None:
    error = assert_error(client.post(SPEECH, json={"input": ""}), 400, param="input")
    assert error["type"] == "invalid_request_error"
    assert "empty" in error["message"]


def test_whitespace_only_input_is_400(client: httpx.Client) -> None:
    response = client.post(SPEECH, json={"input": "  \n\t \u00a0 "})
    assert_error(response, 400, param="input", code="empty_input")


def test_emoji_only_input_is_400_as_nothing_speakable(client: httpx.Client) -> None:
    response = client.post(SPEECH, json={"input": "\U0001f600\U0001f389\U0001f44d"})
    error = assert_error(response, 400, param="input", code="empty_input")
    assert "speakable" in error["message"]


def test_body_one_byte_over_the_limit_is_413(client: httpx.Client) -> None:
    """One byte over VOXSERVE_MAX_BODY_BYTES is refused by the guard, naming the body."""
    response = client.post(
        SPEECH, content=json_body_of_size(MAX_BODY_BYTES + 1), headers=JSON_HEADERS
    )
    error = assert_error(response, 413, param="body", code="request_too_large")
    assert str(MAX_BODY_BYTES) in error["message"]


def test_body_exactly_at_the_limit_passes_the_body_check(client: httpx.Client) -> None:
    """A body of exactly the limit gets through to the text check, which refuses it instead."""
    response = client.post(SPEECH, content=json_body_of_size(MAX_BODY_BYTES), headers=JSON_HEADERS)
    assert_error(response, 413, param="input", code="input_too_long")


def test_input_over_max_chars_is_413_naming_the_limit(client: httpx.Client) -> None:
    response = client.post(SPEECH, json={"input": "word " * 1000})  # 5000 chars, ~5 kB body
    error = assert_error(response, 413, param="input", code="input_too_long")
    assert str(MAX_INPUT_CHARS) in error["message"]
    assert "5000" in error["message"]
    assert "VOXSERVE_MAX_INPUT_CHARS" in error["message"]


def test_input_of_exactly_max_chars_is_accepted(client: httpx.Client) -> None:
    """The limit is inclusive. Only the status is read; the stream is dropped unread."""
    text = ("Hello there. " * 400)[:MAX_INPUT_CHARS]
    assert len(text) == MAX_INPUT_CHARS
    with client.stream("POST", SPEECH, json={"input": text, "response_format": "pcm"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("audio/")


# -- the body itself ------------------------------------------------------------------------


def test_invalid_json_is_400_invalid_json(client: httpx.Client) -> None:
    response = client.post(SPEECH, content=b'{"input": "Hello', headers=JSON_HEADERS)
    error = assert_error(response, 400, param="body", code="invalid_json")
    assert "JSON" in error["message"]
    assert "Unterminated string" in error["message"]  # says what is wrong, and where


def test_non_utf8_json_body_is_400(client: httpx.Client) -> None:
    response = client.post(SPEECH, content=b'{"input": "caf\xe9 \xff"}', headers=JSON_HEADERS)
    assert_error(response, 400, param="body")


def test_non_utf8_json_body_is_reported_as_invalid_json(client: httpx.Client) -> None:
    response = client.post(SPEECH, content=b'{"input": "caf\xe9 \xff"}', headers=JSON_HEADERS)
    error = assert_error(response, 400, param="body", code="invalid_json")
    assert "UTF-8" in error["message"]


#: Bodies no JSON decoder accepts: each must be a 400 on every route, never a 500.
UNDECODABLE = {
    "arrays 100k deep": b"[" * 100_000,
    "objects 100k deep": b'{"a":' * 100_000,
    "not UTF-8": b'{"input": "caf\xe9 \xff"}',
    "cut short": b'{"input": "Hello',
}


@pytest.mark.parametrize("path", [SPEECH, "/api/tts", "/process"])
@pytest.mark.parametrize("kind", sorted(UNDECODABLE))
def test_undecodable_json_is_400_invalid_json_on_every_route(
    client: httpx.Client, path: str, kind: str
) -> None:
    response = client.post(path, content=UNDECODABLE[kind], headers=JSON_HEADERS)
    error = assert_error(response, 400, param="body", code="invalid_json")
    if "deep" in kind:
        assert "nested too deeply" in error["message"]


def test_json_array_instead_of_object_is_422(client: httpx.Client) -> None:
    response = client.post(SPEECH, json=[{"input": "Hello."}])
    error = assert_error(response, 422, code="invalid_value")
    assert "object" in error["message"]


def test_json_body_without_content_type_is_read_as_json(client: httpx.Client) -> None:
    """As deps.require_json says: a missing Content-Type is tolerated (curl -d sends a
    form type, but hand-written clients often send none)."""
    body = json.dumps({"input": "Hello.", "response_format": "wav", "stream": False}).encode()
    response = client.post(SPEECH, content=body)
    assert "content-type" not in response.request.headers
    assert response.status_code == 200, response.text
    samples, rate = sf.read(io.BytesIO(response.content), dtype="float32")
    assert rate == 22050
    assert float(abs(samples).max()) > 0.05


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        (SPEECH, "application/x-www-form-urlencoded"),
        (SPEECH, "multipart/form-data; boundary=x"),
        ("/api/tts", "text/plain"),
        ("/process", "text/plain; charset=utf-8"),
    ],
)
def test_a_body_of_another_type_is_415_naming_content_type(
    client: httpx.Client, path: str, content_type: str
) -> None:
    body = json.dumps({"input": "Hello.", "text": "Hello.", "INPUT_TEXT": "Hello."}).encode()
    response = client.post(path, content=body, headers={"content-type": content_type})
    error = assert_error(response, 415, param="Content-Type", code="unsupported_media_type")
    assert repr(content_type.split(";", maxsplit=1)[0]) in error["message"]


def test_text_plain_content_type_is_415(client: httpx.Client) -> None:
    body = json.dumps({"input": "Hello."}).encode()
    response = client.post(SPEECH, content=body, headers={"content-type": "text/plain"})
    error = assert_error(response, 415, param="Content-Type", code="unsupported_media_type")
    assert "application/json" in error["message"]
    assert "text/plain" in error["message"]


# -- fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize("speed", [0, -1, 5, "fast"])
def test_out_of_range_or_non_numeric_speed_is_422_naming_speed(
    client: httpx.Client, speed: object
) -> None:
    response = client.post(SPEECH, json={"input": "Hello.", "speed": speed})
    error = assert_error(response, 422, param="speed", code="invalid_value")
    assert error["type"] == "invalid_request_error"


def test_missing_input_is_422_naming_input(client: httpx.Client) -> None:
    response = client.post(SPEECH, json={"model": "tts-1", "voice": "alloy"})
    error = assert_error(response, 422, param="input", code="invalid_value")
    assert "required" in error["message"].lower()


def test_unknown_voice_is_404_listing_installed_voices(client: httpx.Client) -> None:
    response = client.post(SPEECH, json={"input": "Hello.", "voice": "no-such-voice"})
    error = assert_error(response, 404, param="voice", code="voice_not_found")
    assert "no-such-voice" in error["message"]
    assert "en_US-joe-medium" in error["message"]


def test_unknown_response_format_is_400_listing_supported_formats(client: httpx.Client) -> None:
    response = client.post(SPEECH, json={"input": "Hello.", "response_format": "ogg3"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unsupported_format"
    assert "ogg3" in error["message"]
    assert "mp3" in error["message"]
    assert "wav" in error["message"]


def test_unknown_response_format_names_the_response_format_field(client: httpx.Client) -> None:
    response = client.post(SPEECH, json={"input": "Hello.", "response_format": "ogg3"})
    assert_error(response, 400, param="response_format", code="unsupported_format")


def test_unknown_model_is_404_naming_model(client: httpx.Client) -> None:
    response = client.post(SPEECH, json={"input": "Hello.", "model": "gpt-9-tts"})
    error = assert_error(response, 404, param="model", code="model_not_found")
    assert "gpt-9-tts" in error["message"]
    assert "tts-1" in error["message"]


# -- routing ---------------------------------------------------------------------------------


def test_unknown_route_is_404_json(client: httpx.Client) -> None:
    assert_error(client.get("/v1/no/such/route"), 404, code="not_found")


def test_wrong_method_is_405_json(client: httpx.Client) -> None:
    assert_error(client.get(SPEECH), 405, code="method_not_allowed")


def test_wrong_method_names_the_allowed_method(client: httpx.Client) -> None:
    response = client.get(SPEECH)
    assert response.status_code == 405
    assert response.headers.get("allow") == "POST"


# -- afterwards ------------------------------------------------------------------------------


def test_server_still_serves_normally_and_logged_no_traceback(
    server: LiveServer, client: httpx.Client
) -> None:
    """Runs last: after every bad request above, a normal request still gets real audio."""
    response = client.post(
        SPEECH,
        json={"input": "Still working fine.", "response_format": "wav", "stream": False},
    )
    assert response.status_code == 200, response.text
    samples, rate = sf.read(io.BytesIO(response.content), dtype="float32")
    assert rate == 22050
    assert len(samples) > rate // 2  # four words take well over half a second
    assert float(abs(samples).max()) > 0.05
    log = server.log
    assert "Traceback" not in log
    assert '"level": "ERROR"' not in log
