"""SSML at the HTTP doors: which requests carry it, what its warnings header says, and
the admin routes that reload the lexicon and the voices.

``X-SSML-Warnings`` lists what a document asked that was not done (unknown tags,
unsupported attributes), "; "-separated, in ASCII: headers carry nothing else.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from voxserve.plan import Plan
from voxserve.server.deps import SynthesizerDep
from voxserve.text.ssml import is_ssml

__all__ = ["WARNINGS_HEADER", "router", "wants_ssml", "with_warnings"]

WARNINGS_HEADER = "X-SSML-Warnings"
_MAX_HEADER_CHARS = 1024

router = APIRouter(tags=["ops"])


def wants_ssml(text: str, input_type: str = "auto") -> bool:
    """Whether ``text`` is read as SSML: asked for, or ``auto`` and it starts ``<speak``."""
    if input_type == "auto":
        return is_ssml(text)
    return input_type == "ssml"


def with_warnings(response: Response, plan: Plan) -> Response:
    """``response`` with the plan's SSML warnings in its header (none: unchanged)."""
    if plan.warnings:
        text = "; ".join(plan.warnings).encode("ascii", "backslashreplace").decode()
        response.headers[WARNINGS_HEADER] = text[:_MAX_HEADER_CHARS]
    return response


@router.post("/admin/lexicon/reload")
async def reload_lexicon(synth: SynthesizerDep) -> dict[str, object]:
    """Read the VOXSERVE_LEXICON files again (behind the API key). A file with a bad
    line: 400 naming it, and the lexicon in use stays."""
    lexicon = synth.reload_lexicon()
    return {"entries": len(lexicon.entries), "files": list(lexicon.sources)}


@router.post("/admin/voices/reload")
async def reload_voices(request: Request, synth: SynthesizerDep) -> dict[str, object]:
    """Sync the voices of VOXSERVE_VOICES_URL and find the voices again (behind the API
    key); with VOXSERVE_PRELOAD the new ones are loaded before the answer. A store that
    does not answer: 503, and the voices in use stay."""
    answer = await asyncio.get_running_loop().run_in_executor(None, synth.reload_voices)
    await synth.apreload()
    request.app.state.metrics.voices_loaded.set(len(synth.library.loaded()))
    return answer


@router.get("/admin/lexicon")
async def show_lexicon(synth: SynthesizerDep) -> dict[str, object]:
    """The lexicon in use: its files and entries (behind the API key)."""
    lexicon = synth.lexicon
    return {
        "files": list(lexicon.sources),
        "entries": [
            {
                "key": e.key,
                "value": e.value,
                "ipa": e.ipa,
                "regex": e.regex,
                "voice": e.voice,
                "where": e.where,
            }
            for e in lexicon.entries
        ],
    }
