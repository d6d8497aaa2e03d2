"""In-process checks of the server's error table, rate arithmetic, API keys and readiness.

Fast unit-level tests through ``fastapi.testclient.TestClient``; the same behaviour over
real HTTP is in test_server_errors.py, test_server_auth.py and test_server_limits.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from voxserve import errors as e
from voxserve.server.app import create_app
from voxserve.server.auth import APIKeyMiddleware, key_id
from voxserve.server.errors import STATUS, voxserve_error_response
from voxserve.server.limits import RateLimitMiddleware
from voxserve.settings import Settings

#: One instance of every VoxserveError class, built the way the code raises it.
EXAMPLES: dict[type[e.VoxserveError], e.VoxserveError] = {
    e.VoxserveError: e.VoxserveError("Something went wrong."),
    e.InvalidRequest: e.InvalidRequest("That cannot be done.", param="input"),
    e.EmptyText: e.EmptyText(),
    e.TextTooLong: e.TextTooLong(5000, 4096),
    e.SpokenTextTooLong: e.SpokenTextTooLong(20000, 8192),
    e.InvalidParameter: e.InvalidParameter("speed must be from 0.25 to 4; got 9.", param="speed"),
    e.InvalidSsml: e.InvalidSsml("Invalid SSML at line 1, column 8: unclosed token."),
    e.InvalidLexicon: e.InvalidLexicon("lexicon.txt:3: 'sql' has nothing after '='."),
    e.UnknownVoice: e.UnknownVoice("nobody", ["en_US-joe-medium"]),
    e.UnknownFormat: e.UnknownFormat("ogg3", ["wav", "mp3"]),
    e.UnknownModel: e.UnknownModel("Unknown model 'x'.", param="model"),
    e.InvalidAudio: e.InvalidAudio("The uploaded file is empty."),
    e.InvalidTextFile: e.InvalidTextFile("The file is not UTF-8 text.", param="file"),
    e.UnknownJob: e.UnknownJob("job-123"),
    e.JobTooLarge: e.JobTooLarge(3_000_000, 2_097_152),
    e.StorageError: e.StorageError("The object could not be written."),
    e.StorageUnavailable: e.StorageUnavailable("The object store did not answer."),
    e.ObjectMissing: e.ObjectMissing("No object under jobs/x.wav."),
    e.AudioTooLong: e.AudioTooLong(3600),
    e.Overloaded: e.Overloaded("The queue is full.", retry_after=1.0),
    e.NoOutputDevice: e.NoOutputDevice("No sound card."),
    e.VoiceLoadError: e.VoiceLoadError("The model file is corrupt."),
    e.EngineError: e.EngineError("Inference failed."),
    e.ConfigError: e.ConfigError("Invalid setting.", param="VOXSERVE_PORT"),
    e.CacheUnavailable: e.CacheUnavailable("The redis cache failed to clear."),
}

ERROR_CLASSES = sorted(EXAMPLES, key=lambda cls: cls.__name__)

#: What docs/api.md documents for each class: (status, OpenAI type, code).
DOCUMENTED: dict[type[e.VoxserveError], tuple[int, str, str]] = {
    e.VoxserveError: (500, "server_error", "voxserve_error"),
    e.InvalidRequest: (400, "invalid_request_error", "invalid_request"),
    e.EmptyText: (400, "invalid_request_error", "empty_input"),
    e.TextTooLong: (413, "invalid_request_error", "input_too_long"),
    e.SpokenTextTooLong: (413, "invalid_request_error", "spoken_input_too_long"),
    e.InvalidParameter: (400, "invalid_request_error", "invalid_parameter"),
    e.InvalidSsml: (400, "invalid_request_error", "invalid_ssml"),
    e.InvalidLexicon: (400, "invalid_request_error", "invalid_lexicon"),
    e.UnknownVoice: (404, "invalid_request_error", "voice_not_found"),
    e.UnknownFormat: (400, "invalid_request_error", "unsupported_format"),
    e.UnknownModel: (404, "invalid_request_error", "model_not_found"),
    e.InvalidAudio: (400, "invalid_request_error", "invalid_audio"),
    e.InvalidTextFile: (400, "invalid_request_error", "invalid_text_file"),
    e.UnknownJob: (404, "invalid_request_error", "job_not_found"),
    e.JobTooLarge: (413, "invalid_request_error", "job_input_too_large"),
    e.StorageError: (500, "server_error", "storage_error"),
    e.StorageUnavailable: (503, "server_error", "storage_unavailable"),
    e.ObjectMissing: (500, "server_error", "object_missing"),
    e.AudioTooLong: (413, "invalid_request_error", "audio_too_long"),
    e.Overloaded: (503, "server_error", "overloaded"),
    e.NoOutputDevice: (500, "server_error", "no_output_device"),
    e.VoiceLoadError: (500, "server_error", "voice_load_error"),
    e.EngineError: (500, "server_error", "engine_error"),
    e.ConfigError: (500, "server_error", "config_error"),
    e.CacheUnavailable: (500, "server_error", "cache_unavailable"),
}


def every_error_class() -> set[type[e.VoxserveError]]:
    found: set[type[e.VoxserveError]] = set()
    todo: list[type[e.VoxserveError]] = [e.VoxserveError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a small, quiet app: Piper only, no cache, no keys (whatever the host has)."""
    return Settings(
        espeak=False, cache="off", api_keys="", api_key_file=tmp_path / "absent", rate_limit=0
    )


@pytest.fixture
def app_factory(settings: Settings) -> Callable[[], FastAPI]:
    """Factory: a fresh app on its own metrics registry (its lifespan is not entered)."""

    def make() -> FastAPI:
        return create_app(settings, registry=CollectorRegistry())

    return make


# -- the status table -----------------------------------------------------------------------


def test_examples_cover_every_error_class() -> None:
    """A new VoxserveError subclass must get a documented status here (and in the table)."""
    assert set(EXAMPLES) == every_error_class()
    assert set(DOCUMENTED) == every_error_class()


def test_status_table_lists_subclasses_before_their_bases() -> None:
    """The first matching row wins, so no row may be shadowed by an earlier base class."""
    classes = [cls for cls, _, _ in STATUS]
    for i, earlier in enumerate(classes):
        for later in classes[i + 1 :]:
            assert not issubclass(later, earlier), (
                f"{later.__name__} is shadowed by {earlier.__name__}"
            )
    assert classes[-1] is e.VoxserveError  # the catch-all is last


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=[c.__name__ for c in ERROR_CLASSES])
def test_error_response_has_documented_status_and_body(cls: type[e.VoxserveError]) -> None:
    exc = EXAMPLES[cls]
    response = voxserve_error_response(exc)
    status, type_, code = DOCUMENTED[cls]
    assert response.status_code == status
    assert response.media_type == "application/json"
    assert (
        response.body
        == JSONResponse(
            {"error": {"message": exc.message, "type": type_, "param": exc.param, "code": code}}
        ).body
    )
    if cls is e.Overloaded:
        assert response.headers["retry-after"] == "1"
    else:
        assert "retry-after" not in response.headers


def test_server_errors_are_logged_and_client_errors_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="voxserve.server.errors"):
        voxserve_error_response(EXAMPLES[e.UnknownVoice])
        assert caplog.records == []
        voxserve_error_response(EXAMPLES[e.EngineError])
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert "Inference failed." in caplog.records[0].getMessage()


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=[c.__name__ for c in ERROR_CLASSES])
def test_error_raised_in_a_route_reaches_the_client_as_documented(
    app_factory: Callable[[], FastAPI], cls: type[e.VoxserveError]
) -> None:
    """The handler installed by create_app maps a raised error exactly like the table."""
    app = app_factory()
    exc = EXAMPLES[cls]

    async def boom() -> None:
        raise exc

    app.add_api_route("/test/raise", boom, methods=["GET"])
    # No ``with``: the lifespan (and the model) is not needed to raise an error.
    response = TestClient(app, raise_server_exceptions=False).get("/test/raise")
    status, type_, code = DOCUMENTED[cls]
    assert response.status_code == status
    assert response.json() == {
        "error": {"message": exc.message, "type": type_, "param": exc.param, "code": code}
    }


def test_unexpected_exception_is_a_500_in_openai_shape(
    app_factory: Callable[[], FastAPI], caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory()

    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/test/raise", boom, methods=["GET"])
    with caplog.at_level(logging.ERROR):
        response = TestClient(app, raise_server_exceptions=False).get("/test/raise")
    assert response.status_code == 500
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["message"], error["param"], error["code"]) == (
        "Internal server error.", None, "internal_error",
    )  # fmt: skip
    assert "secret internal detail" not in response.text  # details stay in the log
    assert any(
        r.exc_info and "secret internal detail" in str(r.exc_info[1]) for r in caplog.records
    )


def test_unexpected_exception_is_typed_server_error(app_factory: Callable[[], FastAPI]) -> None:
    app = app_factory()

    async def boom() -> None:
        raise RuntimeError("an unexpected bug")

    app.add_api_route("/test/raise", boom, methods=["GET"])
    response = TestClient(app, raise_server_exceptions=False).get("/test/raise")
    assert response.json()["error"]["type"] == "server_error"


# -- rate limit arithmetic --------------------------------------------------------------------


async def _never(scope: object, receive: object, send: object) -> None:
    raise AssertionError("take() is tested on its own; the app is never called")


def test_token_bucket_spends_the_burst_then_says_how_long_to_wait() -> None:
    limiter = RateLimitMiddleware(_never, rate=2.0, burst=3)
    assert [limiter.take("a", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", 100.0) == pytest.approx(0.5)  # one token at 2 per second
    assert limiter.take("a", 100.25) == pytest.approx(0.25)  # half a token refilled
    assert limiter.take("a", 100.5) == 0.0  # a whole token now
    assert limiter.take("a", 100.5) == pytest.approx(0.5)


def test_token_bucket_refills_only_up_to_the_burst() -> None:
    limiter = RateLimitMiddleware(_never, rate=1.0, burst=2)
    assert limiter.take("a", 0.0) == 0.0
    # A long idle time refills to the burst (2), not to 1000 tokens.
    assert [limiter.take("a", 1000.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]


def test_token_bucket_keeps_clients_apart() -> None:
    limiter = RateLimitMiddleware(_never, rate=1.0, burst=1)
    assert limiter.take("key-a", 5.0) == 0.0
    assert limiter.take("key-a", 5.0) == pytest.approx(1.0)
    assert limiter.take("key-b", 5.0) == 0.0


def test_token_bucket_forgets_the_idlest_client_when_full() -> None:
    limiter = RateLimitMiddleware(_never, rate=1.0, burst=1)
    limiter.MAX_CLIENTS = 2
    assert limiter.take("old", 1.0) == 0.0
    assert limiter.take("recent", 2.0) == 0.0
    assert limiter.take("new", 2.0) == 0.0  # evicts "old", the least recently updated
    assert limiter.take("recent", 2.0) == pytest.approx(1.0)  # still remembered, still empty
    assert limiter.take("old", 2.0) == 0.0  # forgotten, so it starts with a full bucket


def test_rate_limit_answers_429_in_openai_shape() -> None:
    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    inner = Starlette(
        routes=[Route("/v1/audio/speech", ok, methods=["POST"]), Route("/v1/models", ok)]
    )
    client = TestClient(RateLimitMiddleware(inner, rate=0.5, burst=1))
    assert client.post("/v1/audio/speech").status_code == 200
    refused = client.post("/v1/audio/speech")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert client.get("/v1/models").status_code == 200  # only synthesis routes are limited


# -- API keys ---------------------------------------------------------------------------------


@pytest.fixture
def keyed_client() -> TestClient:
    """A tiny app behind APIKeyMiddleware with keys k-one and k-two; it echoes client_id."""

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"client_id": getattr(request.state, "client_id", None)})

    inner = Starlette(
        routes=[
            Route("/v1/models", whoami),
            Route("/healthz", whoami),
            Route("/readyz", whoami),
            Route("/static/app.js", whoami),
        ]
    )
    return TestClient(APIKeyMiddleware(inner, keys=frozenset({"k-one", "k-two"})))


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer k-one"},
        {"Authorization": "bearer k-two"},
        {"X-API-Key": "k-two"},
        {"Authorization": "Basic abc", "X-API-Key": "k-one"},
    ],
    ids=["bearer", "lowercase-scheme", "x-api-key", "x-api-key-beside-basic"],
)
def test_api_key_middleware_accepts_a_configured_key(
    keyed_client: TestClient, headers: dict[str, str]
) -> None:
    response = keyed_client.get("/v1/models", headers=headers)
    assert response.status_code == 200
    key = headers.get("X-API-Key") or headers["Authorization"].split()[-1]
    assert response.json() == {"client_id": key_id(key)}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing API key"),
        ({"Authorization": "Bearer k-three"}, "Invalid API key"),
        ({"X-API-Key": "k-on"}, "Invalid API key"),
        ({"Authorization": "Bearer K-ONE"}, "Invalid API key"),
    ],
    ids=["none", "unknown", "prefix", "wrong-case"],
)
def test_api_key_middleware_refuses_with_401(
    keyed_client: TestClient, headers: dict[str, str], message: str
) -> None:
    response = keyed_client.get("/v1/models", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="voxserve"'
    error = response.json()["error"]
    assert error["message"].startswith(message)
    assert (error["type"], error["code"], error["param"]) == (
        "authentication_error", "invalid_api_key", None,
    )  # fmt: skip


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/static/app.js"])
def test_api_key_middleware_lets_public_paths_through(keyed_client: TestClient, path: str) -> None:
    response = keyed_client.get(path)
    assert response.status_code == 200
    assert response.json() == {"client_id": None}


def test_api_key_middleware_without_keys_lets_everything_through() -> None:
    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    client = TestClient(APIKeyMiddleware(Starlette(routes=[Route("/v1/models", ok)]), frozenset()))
    assert client.get("/v1/models").status_code == 200


def test_key_id_is_a_short_stable_label_that_hides_the_key() -> None:
    label = key_id("k-one")
    assert label == key_id("k-one") != key_id("k-two")
    assert len(label) == 12
    assert int(label, 16) >= 0  # hexadecimal
    assert "k-one" not in label


# -- readiness ----------------------------------------------------------------------------------


def test_readyz_is_503_before_the_lifespan_200_inside_and_503_after(
    app_factory: Callable[[], FastAPI],
) -> None:
    app = app_factory()
    before = TestClient(app).get("/readyz")
    assert before.status_code == 503
    assert before.json() == {"status": "starting"}
    assert TestClient(app).get("/healthz").status_code == 200  # alive while not ready

    with TestClient(app) as client:  # runs the lifespan: loads and warms up the voice
        during = client.get("/readyz")
        assert during.status_code == 200
        body = during.json()
        assert body["status"] == "ready"
        assert body["loaded"] >= 1
        assert app.state.metrics.registry.get_sample_value("voxserve_ready") == 1.0

    after = TestClient(app).get("/readyz")
    assert after.status_code == 503
    assert after.json() == {"status": "draining"}
    assert app.state.metrics.registry.get_sample_value("voxserve_ready") == 0.0


# -- HEAD -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/"])
def test_head_answers_like_get_without_a_body(
    app_factory: Callable[[], FastAPI], path: str
) -> None:
    """Probes and uptime checkers that send HEAD get GET's status and headers, no body."""
    client = TestClient(app_factory())
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code != 405
    assert head.content == b""
    assert get.content  # GET does have a body: HEAD really left it out
    ignored = {"x-request-id", "date"}
    assert {k: v for k, v in head.headers.items() if k not in ignored} == {
        k: v for k, v in get.headers.items() if k not in ignored
    }
