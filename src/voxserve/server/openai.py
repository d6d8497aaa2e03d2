"""OpenAI-compatible routes: ``/v1/audio/speech``, ``/v1/models``, ``/v1/audio/voices``.

The official ``openai`` package works against these unchanged (``base_url=.../v1``).
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Depends, Request, Response

from voxserve.audio import FORMATS as AUDIO_FORMATS
from voxserve.errors import UnknownFormat, UnknownModel
from voxserve.server.deps import BypassDep, ResponderDep, SynthesizerDep, require_json
from voxserve.server.openai_voices import aliases, voice_id
from voxserve.server.schemas import (
    MODELS,
    CustomVoice,
    ErrorResponse,
    ModelInfo,
    ModelList,
    SpeechRequest,
    VoiceInfo,
    VoiceList,
)
from voxserve.server.speech import Mode, timed
from voxserve.server.ssml_routes import wants_ssml, with_warnings
from voxserve.server.transcribe import model_ids
from voxserve.synthesizer import Synthesizer
from voxserve.types import SynthesisRequest

# A body without Content-Type is read as JSON (deps.require_json refuses any other type);
# FastAPI would leave it unparsed and answer a misleading 422.
router = APIRouter(prefix="/v1", tags=["openai"], strict_content_type=False)

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 415, 422, 429, 503)
}


@router.post(
    "/audio/speech",
    dependencies=[Depends(require_json)],
    responses={
        200: {
            "description": "Audio in the requested format (streamed unless stream=false).",
            "content": {
                **{fmt.content_type: {} for fmt in AUDIO_FORMATS.values()},
                "text/event-stream": {},
            },
        },
        **_ERRORS,
    },
)
async def create_speech(
    http: Request,
    body: SpeechRequest,
    synth: SynthesizerDep,
    speech: ResponderDep,
    bypass: BypassDep,
) -> Response:
    """Speak ``input`` with ``voice`` in ``response_format``.

    Send ``Cache-Control: no-cache`` to skip the cache read; ``X-Cache`` in the response
    says hit, miss or bypass.
    """
    voice = speech_voice(body, synth, http.app.state.settings.voice_map)
    # ``instructions`` is accepted and ignored: no installed engine takes a style prompt.
    request = SynthesisRequest(
        text=body.input,
        voice=voice,
        format=body.response_format,
        params=body.params(),
        ssml=wants_ssml(body.input, body.input_type),
    )
    try:
        plan = synth.plan(request)
    except UnknownFormat as exc:  # name the field as this API calls it
        raise UnknownFormat(exc.format, exc.supported, param="response_format") from None
    mode: Mode = "sse" if body.stream_format == "sse" else "stream" if body.stream else "whole"
    if body.timestamps is not None:
        plan = timed(plan, body.timestamps, sse=mode == "sse")
        mode = mode if body.timestamps == "words" and mode == "sse" else "whole"
    response = await speech.respond(http, "/v1/audio/speech", plan, mode=mode, bypass=bypass)
    return with_warnings(response, plan)


def speech_voice(body: SpeechRequest, synth: Synthesizer, voice_map: Mapping[str, str]) -> str:
    """The installed voice that speaks ``body`` (``voice_map``: VOXSERVE_VOICE_MAP); raises
    UnknownModel or UnknownVoice for a ``model`` or ``voice`` this server does not have
    (the live route shares this)."""
    if body.model not in MODELS and body.model not in {v.id for v in synth.voices()}:
        raise UnknownModel(
            f"Unknown model {body.model!r}. Models: {', '.join(MODELS)}.", param="model"
        )
    if isinstance(body.voice, CustomVoice):
        return voice_id(body.voice.id, synth.library, voice_map, custom=True)
    return voice_id(body.voice, synth.library, voice_map)


@router.get("/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    """The model names accepted by /v1/audio/speech, then by /v1/audio/transcriptions."""
    names = [*MODELS, *model_ids(request.app.state.transcriber)]
    return ModelList(data=[ModelInfo(id=m) for m in dict.fromkeys(names)])


def voice_list(synth: Synthesizer, voice_map: Mapping[str, str]) -> VoiceList:
    library = synth.library
    return VoiceList(
        voices=[
            VoiceInfo(
                id=v.id,
                name=v.id,
                language=v.language,
                sample_rate=v.sample_rate,
                engine=v.engine,
                quality=v.quality,
            )
            for v in synth.voices()
        ],
        default=library.default_voice,
        aliases=aliases(library, voice_map),
    )


@router.get("/audio/voices", response_model=VoiceList)
async def list_voices(request: Request, synth: SynthesizerDep) -> VoiceList:
    """Installed voices, and the OpenAI voice names each maps to."""
    return voice_list(synth, request.app.state.settings.voice_map)
