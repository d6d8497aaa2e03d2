"""The interactive API docs at ``/docs``, served from packaged assets: no CDN, works offline.

FastAPI's own ``/docs`` loads Swagger UI from a CDN (no integrity check, nothing offline)
and its favicon from fastapi.tiangolo.com. Here the page is the same, but every asset
comes from the ``fastapi-offline`` package's copy of swagger-ui-dist 5 (Swagger UI 4, as
``swagger-ui-bundle`` ships it, cannot render OpenAPI 3.1, which FastAPI generates).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where the Swagger UI files are served.
ASSETS_PATH = "/docs-assets"


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` and its files under ``/docs-assets``.

    Create ``app`` with ``docs_url=None, redoc_url=None`` so FastAPI adds no CDN page.
    """
    assets = files("fastapi_offline").joinpath("static")
    app.mount(ASSETS_PATH, StaticFiles(directory=str(assets)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        )

    # A plain Starlette route, as FastAPI adds its own docs: it answers HEAD too.
    app.add_route("/docs", swagger_ui, include_in_schema=False)
