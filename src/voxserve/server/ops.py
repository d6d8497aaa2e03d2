"""Operations: liveness, readiness, version, and the separate metrics application."""

from __future__ import annotations

import platform
from importlib.metadata import version as package_version

import onnxruntime
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.types import Receive, Scope, Send

router = APIRouter(tags=["operations"])


# One route for both methods, so that a 405 (OPTIONS, POST) lists them both in Allow.
@router.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz() -> dict[str, str]:
    """The process is alive and its event loop answers."""
    return {"status": "ok"}


@router.api_route("/readyz", methods=["GET", "HEAD"])
async def readyz(request: Request) -> JSONResponse:
    """200 once the voices are loaded and warmed up; 503 before that and while draining."""
    state = request.app.state
    if state.draining:
        return JSONResponse({"status": "draining"}, status_code=503)
    if not state.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    synth = state.synthesizer
    return JSONResponse(
        {"status": "ready", "voices": len(synth.voices()), "loaded": len(synth.library.loaded())}
    )


@router.get("/version")
async def version(request: Request) -> dict[str, object]:
    """Versions of voxserve and its engine, and the providers the loaded voices run on."""
    synth = request.app.state.synthesizer
    providers = sorted({p for e in synth.library.loaded() for p in getattr(e, "providers", [])[:1]})
    return {
        "voxserve": package_version("voxserve"),
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
        "providers": providers,
        "default_voice": synth.library.default_voice,
    }


class MetricsApp:
    """A tiny ASGI app serving ``/metrics`` from one registry, for its own listener."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != "/metrics":
            response = Response("Not found. Metrics are at /metrics.\n", status_code=404)
        elif scope["method"] not in ("GET", "HEAD"):
            response = Response("Method not allowed.\n", status_code=405, headers={"Allow": "GET"})
        else:
            response = Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
        await response(scope, receive, send)
