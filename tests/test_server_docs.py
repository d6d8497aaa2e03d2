"""The /docs page: Swagger UI from the package's own files, with no host outside the app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from voxserve.server.app import create_app
from voxserve.settings import Settings


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    """The app without its lifespan (no ``with``): the docs need no voice."""
    settings = Settings(espeak=False, cache="off", api_keys="", api_key_file=tmp_path / "absent")
    return TestClient(create_app(settings, registry=CollectorRegistry()))


def referenced(page: str) -> list[str]:
    """Every URL the page makes the browser fetch: script src, link href, the spec's url."""
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    urls += re.findall(r"""\burl:\s*["']([^"']+)["']""", page)
    return urls


def test_docs_page_names_no_host_at_all(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "SwaggerUIBundle" in page
    assert "http://" not in page
    assert "https://" not in page
    assert "//" not in "".join(referenced(page))  # no scheme-relative //host either


@pytest.mark.filterwarnings("ignore:Duplicate Operation ID:UserWarning")  # GET+POST compat routes
def test_everything_the_docs_page_loads_is_served_by_the_app(client: TestClient) -> None:
    urls = referenced(client.get("/docs").text)
    assert {Path(u).name for u in urls} >= {
        "swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "openapi.json",
    }  # fmt: skip
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.content, url


@pytest.mark.filterwarnings("ignore:Duplicate Operation ID:UserWarning")
def test_the_bundled_swagger_ui_renders_the_openapi_version_the_app_serves(
    client: TestClient,
) -> None:
    """Swagger UI 4 (the swagger-ui-bundle package) shows "Unable to render this definition"
    for OpenAPI 3.1; the served bundle must know 3.1."""
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1.")
    bundle = client.get("/docs-assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert "isOAS31" in bundle.text


def test_head_on_docs_is_200_without_a_body(client: TestClient) -> None:
    response = client.head("/docs")
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) == len(client.get("/docs").content)


def test_no_cdn_docs_page_remains(client: TestClient) -> None:
    assert client.get("/redoc").status_code == 404
