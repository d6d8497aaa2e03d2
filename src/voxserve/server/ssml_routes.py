"""SSML at the HTTP doors: which requests carry it, what its warnings header says, and
the admin routes that reload the lexicon and the voices.

``X-SSML-Warnings`` lists what a document asked that was not done (unknown tags,
unsupported attributes), "; "-separated, in ASCII: headers carry nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from fastapi import APIRouter, Request, Response

from voxserve.errors import VoxserveError
from voxserve.plan import Plan
from voxserve.server.deps import SynthesizerDep
from voxserve.synthesizer import Synthesizer
from voxserve.text.ssml import is_ssml

__all__ = [
    "WARNINGS_HEADER",
    "reload_lexicon_on_hangup",
    "router",
    "wants_ssml",
    "with_warnings",
]

log = logging.getLogger(__name__)

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


def reload_lexicon_on_hangup(synth: Synthesizer) -> bool:
    """From now on, SIGHUP reloads the lexicon as ``POST /admin/lexicon/reload`` does (the
    Unix way to say "read your files again"); a file with a bad line is logged and the
    lexicon in use stays. Call it in the running loop; returns whether it took: only the
    main thread's loop can take signals (a server run in a thread, as tests do, gets none)."""

    def reload() -> None:
        try:
            lexicon = synth.reload_lexicon()
        except VoxserveError as exc:
            log.error("SIGHUP: the lexicon was not reloaded, the one in use stays: %s", exc)
        else:
            log.info("SIGHUP: lexicon reloaded, %d entries", len(lexicon.entries))

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    except (NotImplementedError, RuntimeError, ValueError, AttributeError):
        return False  # not the main thread, or no SIGHUP (Windows)
    return True


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
    from voxserve.voice_sync import reload_voices as reload  # boto3 only when it is used

    settings = request.app.state.settings
    answer = await asyncio.get_running_loop().run_in_executor(None, reload, settings, synth.library)
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
