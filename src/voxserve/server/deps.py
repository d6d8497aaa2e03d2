"""FastAPI dependencies: the objects the lifespan built, and request checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from voxserve.server.errors import APIError
from voxserve.server.speech import SpeechResponder
from voxserve.synthesizer import Synthesizer


def synthesizer(request: Request) -> Synthesizer:
    synth: Synthesizer = request.app.state.synthesizer
    return synth


def responder(request: Request) -> SpeechResponder:
    speech: SpeechResponder = request.app.state.responder
    return speech


def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON (a missing Content-Type is tolerated).

    A body without Content-Type is parsed as JSON: the router that uses this dependency
    turns FastAPI's ``strict_content_type`` off.
    """
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise APIError(
            415, f"Content-Type must be application/json, not {media!r}.", param="Content-Type"
        )


SynthesizerDep = Annotated[Synthesizer, Depends(synthesizer)]
ResponderDep = Annotated[SpeechResponder, Depends(responder)]


def cache_bypass(request: Request) -> bool:
    """True for ``Cache-Control: no-cache`` (or ``Pragma: no-cache``): skip the cache read.

    The fresh result still refreshes the entry, as HTTP's no-cache means "revalidate".
    """
    directives = request.headers.get("cache-control", "") + "," + request.headers.get("pragma", "")
    return any(d.strip().lower() == "no-cache" for d in directives.split(","))


BypassDep = Annotated[bool, Depends(cache_bypass)]
