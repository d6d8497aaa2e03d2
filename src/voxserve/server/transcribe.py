"""OpenAI-compatible speech to text: ``/v1/audio/transcriptions`` and ``/translations``.

The official ``openai`` package's ``client.audio.transcriptions.create`` and
``client.audio.translations.create`` work unchanged. A request goes::

    multipart body (read whole by the guard, VOXSERVE_ASR_MAX_UPLOAD_BYTES)
      ─► model, format and options checked ─► decoded on a lane (400 / 413 naming file)
      ─► admitted by estimated work (503 with Retry-After) ─► recognized window by window
      ─► the chosen format, or server-sent events as each window is done (stream=true)

OpenAI's model names (``whisper-1``, ``gpt-4o-transcribe``...) are answered by the
server's default model, as is a request without one; the installed models are also
accepted by their own ids. Fields of OpenAI's request that Whisper has no use for
(``include[]``, ``chunking_strategy``, ``languages[]``, ``known_speaker_*``) are accepted
and ignored; docs/api.md's conformance tables say why, field by field.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from voxserve.admission import Admission
from voxserve.asr import Transcriber, Transcription
from voxserve.asr.captions import FORMATS, render
from voxserve.asr.models import AsrModel
from voxserve.asr.whisper import Info, Segment, Task
from voxserve.errors import InvalidParameter, VoxserveError
from voxserve.logs import annotate
from voxserve.server.errors import APIError, error_body
from voxserve.server.schemas import ErrorResponse

router = APIRouter(prefix="/v1", tags=["openai"])

#: OpenAI's speech-to-text model names; each is answered by the default model.
OPENAI_MODELS: Final = (
    "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15", "gpt-transcribe", "gpt-4o-transcribe-diarize",
)  # fmt: skip
GRANULARITIES: Final = ("segment", "word")
#: Characters of a prompt kept, from its end: Whisper reads the last 223 tokens of it.
PROMPT_CHARS: Final = 2000

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 408, 413, 422, 429, 503)
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The transcript in the requested format, or server-sent events "
        "(transcript.text.delta, transcript.text.done) with stream=true.",
        "content": {
            **{media.split(";")[0]: {} for media in FORMATS.values()},
            "text/event-stream": {},
        },
    },
    **_ERRORS,
}

FileField = Annotated[UploadFile, File(description="The audio: wav, mp3, ogg, flac, m4a, webm.")]
ModelField = Annotated[
    str | None,
    Form(description="whisper-1 (or another OpenAI name) or a model id; default: the default."),
]
PromptField = Annotated[
    str | None, Form(description="Text to steer the style; Whisper reads its end (~220 tokens).")
]
FormatField = Annotated[str, Form(description="json, text, srt, vtt or verbose_json.")]
TemperatureField = Annotated[float, Form(description="0 to 1; 0 raises it on failure.")]


def _null(value: object) -> object:
    """A form cannot send JSON's null but as the text ``null`` (as JavaScript's FormData
    does): absent."""
    return None if value == "null" else value


def transcriber(request: Request) -> Transcriber:
    listener: Transcriber | None = request.app.state.transcriber
    if listener is None:
        raise APIError(
            404,
            "Speech recognition is turned off on this server (VOXSERVE_ASR=false).",
            code="asr_disabled",
        )
    return listener


@router.post("/audio/transcriptions", responses=_RESPONSES)
async def create_transcription(
    http: Request,
    *,
    file: FileField,
    model: ModelField = None,
    language: Annotated[str | None, Form(description="ISO-639-1, e.g. en.")] = None,
    prompt: PromptField = None,
    response_format: FormatField = "json",
    temperature: TemperatureField = 0.0,
    # OpenAI's SDKs send an array as repeated `name[]` fields, its document as `name`.
    timestamp_granularities: Annotated[
        list[str] | None, Form(alias="timestamp_granularities[]")
    ] = None,
    timestamp_granularities_plain: Annotated[
        list[str] | None, Form(alias="timestamp_granularities")
    ] = None,
    keywords: Annotated[list[str] | None, Form(alias="keywords[]")] = None,
    keywords_plain: Annotated[list[str] | None, Form(alias="keywords")] = None,
    stream: Annotated[bool | None, BeforeValidator(_null), Form()] = None,
) -> Response:
    """The text spoken in ``file``. ``keywords`` join the end of the prompt (the words
    Whisper is steered to)."""
    for name, values in (
        ("timestamp_granularities[]", timestamp_granularities),
        ("timestamp_granularities", timestamp_granularities_plain),
    ):
        for granularity in values or ():
            if granularity not in GRANULARITIES:
                raise InvalidParameter(
                    f"Unknown timestamp granularity {granularity!r}: segment or word.",
                    param=name,
                )
    granularities = (*(timestamp_granularities or ()), *(timestamp_granularities_plain or ()))
    listed = [k.strip() for k in (*(keywords or ()), *(keywords_plain or ())) if k.strip()]
    steering = " ".join(part for part in (prompt, ", ".join(listed)) if part) or None
    ask = _Ask(
        model, "transcribe", language, steering, response_format, temperature,
        granularities, bool(stream),
    )  # fmt: skip
    return await _recognize(http, file, ask)


@router.post("/audio/translations", responses=_RESPONSES)
async def create_translation(
    http: Request,
    *,
    file: FileField,
    model: ModelField = None,
    prompt: PromptField = None,
    response_format: FormatField = "json",
    temperature: TemperatureField = 0.0,
) -> Response:
    """The speech in ``file``, in English (needs a multilingual model)."""
    ask = _Ask(model, "translate", None, prompt, response_format, temperature, (), False)
    return await _recognize(http, file, ask)


def model_ids(listener: Transcriber | None) -> list[str]:
    """The names /v1/audio/transcriptions takes (for /v1/models)."""
    return [] if listener is None else [*listener.models, *OPENAI_MODELS]


def _model(listener: Transcriber, name: str | None, task: Task) -> AsrModel:
    """The model ``name`` asks for; OpenAI's names (and none) get the default, or for a
    translation the first multilingual model when the default is English only."""
    if name is not None and name not in OPENAI_MODELS:
        return listener.model(name)
    default = listener.model(None)
    if task == "translate" and default.english_only:
        return next((m for m in listener.models.values() if not m.english_only), default)
    return default


@dataclass(frozen=True)
class _Ask:
    """One request's form fields, as both routes take them."""

    model: str | None
    task: Task
    language: str | None
    prompt: str | None
    response_format: str
    temperature: float
    granularities: tuple[str, ...]
    stream: bool


async def _recognize(http: Request, file: UploadFile, ask: _Ask) -> Response:
    listener = transcriber(http)
    model = _model(listener, ask.model, ask.task)
    task, response_format, granularities = ask.task, ask.response_format, ask.granularities
    if response_format not in FORMATS:
        why = (
            " It labels who spoke when, which needs speaker diarization; voxserve does not "
            "do it (verbose_json gives the segments with their times)."
            if response_format == "diarized_json"
            else ""
        )
        raise InvalidParameter(
            f"Unsupported response_format {response_format!r}.{why} "
            f"Supported: {', '.join(FORMATS)}.",
            param="response_format",
        )
    recognizer = await listener.load(model)
    audio = await listener.decode(await file.read())
    options = listener.options(
        recognizer, audio, task=task, language=ask.language or None,
        prompt=ask.prompt[-PROMPT_CHARS:] if ask.prompt else None,
        temperature=ask.temperature, words="word" in granularities,
    )  # fmt: skip
    admission: Admission = http.app.state.admission
    ticket = admission.admit(listener.costs(model, audio), footprint=1, background=True)
    http.state.ticket = ticket  # given back by the concurrency middleware at the end
    info, segments = await listener.start(recognizer, audio, options, on_window=ticket.done)
    annotate(model=model.id, task=task, audio_seconds=round(info.duration, 3))
    log_text = http.app.state.settings.log_text
    if ask.stream:
        return StreamingResponse(
            _events(info, segments, log_text),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Model": model.id},
        )
    result = Transcription(model.id, info, [s async for s in segments])
    annotate(characters=len(result.text), **({"transcript": result.text} if log_text else {}))
    body = render(result, response_format, task=task, granularities=granularities)
    return Response(body, media_type=FORMATS[response_format], headers={"X-Model": model.id})


async def _events(
    info: Info, segments: AsyncIterator[Segment], log_text: bool
) -> AsyncIterator[bytes]:
    """OpenAI's streamed transcription: a delta per segment as it is heard, then done."""
    parts: list[str] = []
    try:
        async for segment in segments:
            text = segment.text.strip()
            if text:
                delta = f" {text}" if parts else text
                parts.append(text)
                yield _sse({"type": "transcript.text.delta", "delta": delta})
    except VoxserveError as exc:  # the status line is sent: say it in the stream
        yield _sse(
            {"type": "error", **error_body(exc.message, "server_error", exc.code, exc.param)}
        )
        return
    text = " ".join(parts)
    annotate(characters=len(text), **({"transcript": text} if log_text else {}))
    yield _sse({"type": "transcript.text.done", "text": text})


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
