"""Security headers: on every response the app gives, refusals and failures included."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from voxserve.server.app import create_app
from voxserve.server.headers import SECURITY_HEADERS, SecurityHeadersMiddleware
from voxserve.settings import Settings

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


class Headers(Protocol):
    def get_list(self, key: str) -> list[str]: ...


def assert_secured(headers: Headers, what: str) -> None:
    for name, value in EXPECTED.items():
        assert headers.get_list(name) == [value], f"{what}: {name}"


def test_the_documented_headers_are_the_ones_sent() -> None:
    assert {name.lower(): value for name, value in SECURITY_HEADERS} == EXPECTED


def test_middleware_adds_the_headers_but_keeps_ones_the_app_set() -> None:
    async def framed(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x", headers={"X-Frame-Options": "SAMEORIGIN"})

    app = SecurityHeadersMiddleware(Starlette(routes=[Route("/", framed)]))
    response = TestClient(app).get("/")
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.fixture
def app_factory(tmp_path: Path) -> Callable[..., FastAPI]:
    """Factory: a fresh app (its lifespan is not entered: nothing here needs a voice)."""

    def make(**overrides: object) -> FastAPI:
        values: dict[str, object] = {
            "espeak": False, "cache": "off", "api_keys": "",
            "api_key_file": tmp_path / "absent", "rate_limit": 0,
        }  # fmt: skip
        settings = Settings(**{**values, **overrides})
        return create_app(settings, registry=CollectorRegistry())

    return make


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),  # an API answer
        ("HEAD", "/healthz", 200),
        ("GET", "/readyz", 503),  # not ready: no lifespan
        ("GET", "/", 200),  # the page
        ("GET", "/static/app.js", 200),  # a static file
        ("GET", "/docs", 200),
        ("GET", "/docs-assets/swagger-ui.css", 200),
        ("GET", "/no/such/route", 404),  # an error from the router
        ("GET", "/v1/audio/speech", 405),
    ],
)
def test_every_kind_of_response_carries_the_headers(
    app_factory: Callable[..., FastAPI], method: str, path: str, status: int
) -> None:
    response = TestClient(app_factory()).request(method, path)
    assert response.status_code == status
    assert_secured(response.headers, f"{method} {path}")


def test_a_refusal_by_a_middleware_carries_the_headers(
    app_factory: Callable[..., FastAPI],
) -> None:
    client = TestClient(app_factory(api_keys="the-key"))
    refused = client.post("/v1/audio/speech", json={"input": "Hi."})
    assert refused.status_code == 401
    assert_secured(refused.headers, "401 from the API key middleware")


def test_a_body_over_the_limit_is_refused_with_the_headers(
    app_factory: Callable[..., FastAPI],
) -> None:
    client = TestClient(app_factory(max_body_bytes=1024))
    refused = client.post("/v1/audio/speech", content=b"x" * 2048)
    assert refused.status_code == 413
    assert_secured(refused.headers, "413 from the body limit")


def test_an_unexpected_500_carries_the_headers(app_factory: Callable[..., FastAPI]) -> None:
    """Starlette answers an unhandled exception from outside every middleware."""
    app = app_factory()

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test/raise", boom, methods=["GET"])
    response = TestClient(app, raise_server_exceptions=False).get("/test/raise")
    assert response.status_code == 500
    assert_secured(response.headers, "unhandled exception")
