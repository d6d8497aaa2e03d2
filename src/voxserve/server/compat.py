"""Routes that speak the Coqui TTS server's and MaryTTS's protocols.

Tools written for Coqui's server on port 5002 (``/api/tts``) and MaryTTS clients such as
Home Assistant's integration (``/process``, ``/voices``, ``/locales``) work by changing
nothing but the host. Both return complete WAV files.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from voxserve.errors import UnknownVoice
from voxserve.server.deps import BypassDep, ResponderDep, SynthesizerDep
from voxserve.server.errors import APIError, undecodable_body
from voxserve.server.ssml_routes import wants_ssml, with_warnings
from voxserve.synthesizer import Synthesizer
from voxserve.types import SynthesisRequest

log = logging.getLogger(__name__)
router = APIRouter(tags=["compatibility"])


async def request_fields(request: Request) -> dict[str, str]:
    """Query parameters, then a urlencoded form or JSON object body, as one mapping."""
    fields = dict(request.query_params)
    if request.method != "POST":
        return fields
    body = await request.body()
    if not body:
        return fields
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = media == "application/json" or media.endswith("+json")
    if not is_json and media not in ("application/x-www-form-urlencoded", ""):
        raise APIError(
            415,
            f"Send a form (application/x-www-form-urlencoded) or JSON body, not {media!r}.",
            param="Content-Type",
        )
    try:
        text = body.decode("utf-8")
        data = json.loads(text) if is_json else None
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deeply
        message = undecodable_body(exc) or "The request body cannot be decoded."
        raise APIError(
            400, message, param="body", code="invalid_json" if is_json else None
        ) from None
    if not is_json:
        fields.update(parse_qsl(text, keep_blank_values=True))
    elif isinstance(data, dict):
        fields.update({k: str(v) for k, v in data.items() if v is not None})
    else:
        raise APIError(400, "The JSON body must be an object.", param="body")
    return fields


@router.api_route("/api/tts", methods=["GET", "POST"], response_class=Response)
async def coqui_tts(
    request: Request,
    synth: SynthesizerDep,
    speech: ResponderDep,
    bypass: BypassDep,
) -> Response:
    """Coqui TTS server: ``text`` and optional ``speaker_id`` (a voice id); returns WAV.

    Like Coqui's server, ``text`` and ``speaker_id`` may also come as headers. The
    ``style_wav`` and ``language_id`` fields are accepted and ignored.
    """
    fields = await request_fields(request)
    text = request.headers.get("text") or fields.get("text", "")
    speaker = request.headers.get("speaker-id") or fields.get("speaker_id") or None
    voice = synth.library.resolve(speaker, param="speaker_id").id if speaker else None
    plan = synth.plan(SynthesisRequest(text=text, voice=voice, format="wav", ssml=wants_ssml(text)))
    response = await speech.respond(request, "/api/tts", plan, mode="whole", bypass=bypass)
    return with_warnings(response, plan)


def _mary_voice(synth: Synthesizer, voice: str | None, locale: str | None) -> str | None:
    """A MaryTTS VOICE that is not installed falls back to a voice of the LOCALE."""
    try:
        return synth.library.resolve(voice).id if voice else None
    except UnknownVoice:
        wanted = (locale or "").replace("-", "_").lower()
        for v in synth.voices():
            if wanted and v.language.lower().startswith(wanted):
                log.info("MaryTTS voice %r is not installed; using %s for %s", voice, v.id, locale)
                return v.id
        log.info("MaryTTS voice %r is not installed; using the default voice", voice)
        return None


@router.api_route("/process", methods=["GET", "POST"], response_class=Response)
async def mary_process(
    request: Request,
    synth: SynthesizerDep,
    speech: ResponderDep,
    bypass: BypassDep,
) -> Response:
    """MaryTTS ``/process``: INPUT_TEXT, INPUT_TYPE (TEXT or SSML), VOICE, LOCALE; returns
    a WAV file."""
    fields = await request_fields(request)
    output = fields.get("OUTPUT_TYPE", "AUDIO").upper()
    if output != "AUDIO":
        raise APIError(400, "Only OUTPUT_TYPE=AUDIO is supported.", param="OUTPUT_TYPE")
    input_type = fields.get("INPUT_TYPE", "TEXT").upper()
    if input_type not in ("TEXT", "SSML"):
        raise APIError(400, "INPUT_TYPE must be TEXT or SSML.", param="INPUT_TYPE")
    voice = _mary_voice(synth, fields.get("VOICE"), fields.get("LOCALE"))
    text = fields.get("INPUT_TEXT", "")
    plan = synth.plan(
        SynthesisRequest(text=text, voice=voice, format="wav", ssml=input_type == "SSML"),
    )
    response = await speech.respond(request, "/process", plan, mode="whole", bypass=bypass)
    return with_warnings(response, plan)


@router.get("/voices", response_class=PlainTextResponse)
async def mary_voices(synth: SynthesizerDep) -> str:
    """MaryTTS voice list: ``name locale gender type`` per line."""
    return "".join(f"{v.id} {v.language} unknown {v.engine}\n" for v in synth.voices())


@router.get("/locales", response_class=PlainTextResponse)
async def mary_locales(synth: SynthesizerDep) -> str:
    """MaryTTS locale list, one per line."""
    return "".join(f"{loc}\n" for loc in sorted({v.language for v in synth.voices()}))
