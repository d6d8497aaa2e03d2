"""Long-form job routes: ``/v1/audio/jobs`` (create, status, events, cancel) and the
signed ``/downloads/`` of results kept on local disk. See docs/jobs.md.

A job belongs to the API key that made it: any other key gets 404, as for an id that
does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import Field, ValidationError
from starlette.datastructures import UploadFile

from voxserve.admission import Admission
from voxserve.audio import FORMATS as AUDIO_FORMATS
from voxserve.errors import (
    InvalidParameter,
    InvalidRequest,
    JobTooLarge,
    UnknownFormat,
    UnknownModel,
)
from voxserve.jobs import Chapter, Job, JobOutputs, JobService, chapter_document, read_upload
from voxserve.jobs.outputs import TIMESTAMP_FILES, chapters_json
from voxserve.jobs.text import is_markdown, plain_markdown
from voxserve.plan import Plan
from voxserve.server.errors import APIError
from voxserve.server.openai_voices import voice_id
from voxserve.server.schemas import MODELS, CustomVoice, ErrorResponse, SpeechRequest
from voxserve.settings import Settings
from voxserve.storage import DiskStorage, build_storage
from voxserve.synthesizer import Synthesizer
from voxserve.types import SynthesisRequest

router = APIRouter(tags=["jobs"])


class JobRequest(SpeechRequest):
    """A job's fields: those of ``/v1/audio/speech``, with Markdown and chapters."""

    input_type: Literal["auto", "text", "markdown"] = Field(  # type: ignore[assignment]
        "auto",
        description="'markdown': the input is Markdown (made plain; headings can start "
        "chapters); 'text': plain text; 'auto': an uploaded file's type or name decides, "
        "JSON input is plain text. SSML is not taken by jobs.",
    )
    timestamps: Literal["words", "srt", "vtt"] | None = Field(
        None,
        description="Piper voices: 'srt' or 'vtt' captions, or 'words' (JSON), as a file "
        "beside the audio (docs/jobs.md).",
    )
    chapters: bool = Field(
        False,
        description="A chapter at each Markdown heading: in the job's result, and in the "
        "file where its format carries chapters (mp3, opus).",
    )


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse} for code in codes}


def _service(request: Request) -> JobService:
    jobs: JobService | None = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise APIError(503, "Jobs are not available yet: the server is starting.")
    return jobs


def _owner(request: Request) -> str:
    return str(getattr(request.state, "client_id", ""))


@router.post("/v1/audio/jobs", status_code=202, responses=_errors(400, 404, 413, 415))
async def create_job(request: Request) -> JSONResponse:
    """Speak a long text into one file: JSON as ``/v1/audio/speech`` (``input``, ``voice``,
    ``response_format``, ``speed``...), or a multipart form with the text as ``file``
    (plain text or Markdown, UTF-8) and the same fields beside it. 202 with the job."""
    jobs = _service(request)
    synth: Synthesizer = request.app.state.synthesizer
    voice_map = request.app.state.settings.voice_map
    limit = request.app.state.settings.jobs_max_input_bytes
    fields = await _fields(request, limit)
    try:
        body = JobRequest.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(p) for p in error["loc"]) or "body"
        raise InvalidParameter(f"{name}: {error['msg']}.", param=name) from None
    size = len(body.input.encode())
    if size > limit:
        raise JobTooLarge(size, limit)
    plan, outputs = await asyncio.to_thread(_plan, synth, body, limit, voice_map)
    job = await jobs.submit(plan, _owner(request), outputs)
    return JSONResponse(
        await _view(jobs, job, request),
        status_code=202,
        headers={"Location": f"/v1/audio/jobs/{job.id}"},
    )


@router.get("/v1/audio/jobs/{job_id}", responses=_errors(404))
async def get_job(job_id: str, request: Request) -> JSONResponse:
    """The job: status, progress, estimated time left, and its result's URL when done."""
    jobs = _service(request)
    return JSONResponse(await _view(jobs, await jobs.lookup(job_id, _owner(request)), request))


@router.get(
    "/v1/audio/jobs/{job_id}/events",
    responses={200: {"content": {"text/event-stream": {}}}, **_errors(404)},
)
async def job_events(job_id: str, request: Request) -> StreamingResponse:
    """Server-sent events: ``job.progress`` now and at every change, then one of
    ``job.succeeded``, ``job.failed``, ``job.cancelled`` (each with the job), and the end."""
    jobs = _service(request)
    job = await jobs.lookup(job_id, _owner(request))

    async def events() -> AsyncIterator[bytes]:
        async for state in jobs.events(job):
            final = state.status not in ("queued", "running")
            name = f"job.{state.status}" if final else "job.progress"
            data = json.dumps(await _view(jobs, state, request))
            yield f"event: {name}\ndata: {data}\n\n".encode()

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.delete("/v1/audio/jobs/{job_id}", responses=_errors(404))
async def cancel_job(job_id: str, request: Request) -> JSONResponse:
    """Cancel the job: chunks stop after their current sentence; what it stored is deleted."""
    jobs = _service(request)
    job = await jobs.cancel(job_id, _owner(request))
    return JSONResponse(await _view(jobs, job, request))


@router.get("/downloads/{key:path}", include_in_schema=False)
async def download(
    key: str, request: Request, expires: int = 0, filename: str = "", signature: str = ""
) -> FileResponse:
    """A result kept on local disk, by the signed URL a job gave (no API key needed)."""
    storage = _service(request).storage
    if not isinstance(storage, DiskStorage) or not storage.signer.check(
        key, expires, filename, signature
    ):
        raise APIError(
            403, "This download link is invalid or has expired: ask for the job again.",
            code="invalid_signature",
        )  # fmt: skip
    path = storage.path(key)
    if not path.is_file():
        raise APIError(404, "This result no longer exists.", code="not_found")
    types = {f.extension: f.content_type for f in AUDIO_FORMATS.values()}
    types |= {"." + suffix.rsplit(".", 1)[-1]: kind for suffix, kind in TIMESTAMP_FILES.values()}
    media = types.get(Path(filename).suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, filename=filename)


async def _fields(request: Request, limit: int) -> dict[str, Any]:
    """The request's fields, from JSON or a multipart form (the text as ``file``)."""
    media = request.headers.get("content-type", "").split(";", maxsplit=1)[0].strip().lower()
    if media in ("", "application/json") or media.endswith("+json"):
        try:
            fields = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequest("The request body is not valid JSON.", param="body") from None
        if not isinstance(fields, dict):
            raise InvalidRequest("The request body must be a JSON object.", param="body")
        return fields
    if media != "multipart/form-data":
        raise APIError(
            415,
            f"Content-Type must be application/json or multipart/form-data, not {media!r}.",
            param="Content-Type",
        )
    async with request.form() as form:  # closes the uploaded file's spool
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != "file"}
        upload = form.get("file")
        if isinstance(upload, UploadFile):
            data = await upload.read(limit + 1)
            if len(data) > limit:
                raise JobTooLarge(len(data), limit, param="file")
            kind, name = upload.content_type or "", upload.filename or ""
            fields["input"] = read_upload(data, kind, name, plain=False)
            if is_markdown(kind, name) and fields.get("input_type", "auto") == "auto":
                fields["input_type"] = "markdown"
    if not isinstance(upload, UploadFile) and "input" not in fields:
        raise InvalidRequest("Send the text as 'input' or upload it as 'file'.", param="file")
    if isinstance(fields.get("voice"), str) and fields["voice"].startswith("{"):
        with contextlib.suppress(ValueError):
            fields["voice"] = json.loads(fields["voice"])
    return fields


def _plan(
    synth: Synthesizer, body: JobRequest, limit: int, voice_map: Mapping[str, str]
) -> tuple[Plan, JobOutputs]:
    if body.model not in MODELS and body.model not in {v.id for v in synth.voices()}:
        raise UnknownModel(
            f"Unknown model {body.model!r}. Models: {', '.join(MODELS)}.", param="model"
        )
    if isinstance(body.voice, CustomVoice):
        voice = voice_id(body.voice.id, synth.library, voice_map, custom=True)
    else:
        voice = voice_id(body.voice, synth.library, voice_map)
    text = body.input
    titles: list[str] = []
    markdown = body.input_type == "markdown"
    if body.chapters and not markdown:
        raise InvalidParameter(
            "chapters start at Markdown headings: upload a Markdown file (.md) or set "
            "input_type to 'markdown'.",
            param="chapters",
        )
    if body.chapters:  # SSML of the plain text with a mark before each heading
        text, titles = chapter_document(body.input)
    elif markdown:
        text = plain_markdown(body.input)
    request = SynthesisRequest(
        text=text, voice=voice, format=body.response_format, params=body.params(),
        ssml=body.chapters,
    )  # fmt: skip
    try:
        plan = synth.plan(request, max_chars=max(limit, len(text)))
    except UnknownFormat as exc:
        raise UnknownFormat(exc.format, exc.supported, param="response_format") from None
    if body.timestamps and not plan.voice.engine.startswith(("piper", "fake")):
        raise InvalidParameter(
            f"Voice {plan.voice.id!r} ({plan.voice.engine}) cannot time its words; "
            "timestamps need a Piper voice.",
            param="timestamps",
        )
    chapters = tuple(
        Chapter(title, mark.sentence) for title, mark in zip(titles, plan.marks, strict=True)
    )
    plan = dataclasses.replace(plan, input_chars=len(body.input), marks=())
    return plan, JobOutputs(timestamps=body.timestamps or "", chapters=chapters)


async def _view(jobs: JobService, job: Job, request: Request) -> dict[str, Any]:
    """The job as the API shows it."""
    url = await jobs.download_url(job)
    if url is not None and url.startswith("/"):
        url = str(request.base_url).rstrip("/") + url
    total = job.chars_total
    return {
        "id": job.id,
        "object": "audio.job",
        "status": job.status,
        "created_at": int(job.created_at),
        "voice": job.plan.voice.id,
        "response_format": job.plan.format.name,
        "input_characters": job.plan.input_chars,
        "progress": {
            "characters": job.chars_done,
            "characters_total": total,
            "chunks": len(job.done),
            "chunks_total": len(job.chunks),
            "audio_seconds": round(job.audio_seconds, 3),
            "fraction": round(job.chars_done / total, 4) if total else 1.0,
        },
        "eta_seconds": None if (eta := job.eta()) is None else round(eta, 1),
        "waiting": job.waiting,
        "error": None if job.error is None else {"message": job.error, "code": "job_failed"},
        "result": None
        if url is None
        else {
            "url": url,
            "expires_at": int(time.time() + jobs.url_seconds),
            "bytes": job.result_bytes,
            "duration_seconds": round(job.duration, 3),
            "content_type": job.plan.format.content_type,
            "filename": job.filename,
            "timestamps": await _timestamps_view(jobs, job, request),
            "chapters": chapters_json(job.chapters),
        },
    }


async def _timestamps_view(jobs: JobService, job: Job, request: Request) -> Any:
    """The job's captions (or words) file, when it has one."""
    url = await jobs.timestamps_url(job)
    if url is None or job.captions_key is None:
        return None
    if url.startswith("/"):
        url = str(request.base_url).rstrip("/") + url
    kind = job.outputs.timestamps
    return {
        "url": url,
        "format": kind,
        "content_type": TIMESTAMP_FILES[kind][1],
        "filename": job.captions_key.rsplit("/", maxsplit=1)[-1],
    }


def uploads(settings: Settings) -> dict[str, tuple[int, float]]:
    """The guard's body limit for job requests: the text (JSON escapes may double it) and
    a form's overhead; the text itself is checked against the limit in the route."""
    size = 2 * settings.jobs_max_input_bytes + 64 * 1024
    return {"/v1/audio/jobs": (size, settings.asr_upload_timeout_seconds)}


def start_service(settings: Settings, synth: Synthesizer, admission: Admission) -> JobService:
    """The job service on the synthesizer's lanes, with its workers started (lifespan)."""
    # One lane is left to speech where there are two or more: a job sentence holds its lane
    # until it is done, and speech arriving behind it would wait that long for its first
    # audio (benchmarks/bench_jobs.py). With a single lane, speech waits at most a sentence.
    workers = settings.jobs_workers or max(1, synth.lanes.total - 1)
    service: JobService
    if settings.jobs_queue == "redis" or (
        settings.jobs_queue == "auto" and settings.jobs_redis_url
    ):
        from voxserve.jobs.distributed import DistributedJobService

        if not settings.jobs_redis_url:
            raise ValueError("VOXSERVE_JOBS_QUEUE=redis needs VOXSERVE_JOBS_REDIS_URL.")
        service = DistributedJobService(
            synth, build_storage(settings), admission,
            redis_url=settings.jobs_redis_url,
            chunk_chars=settings.jobs_chunk_chars, workers=workers,
            url_seconds=settings.jobs_url_seconds,
            lease_seconds=settings.jobs_lease_seconds,
        )  # fmt: skip
    else:
        service = JobService(
            synth, build_storage(settings), admission,
            chunk_chars=settings.jobs_chunk_chars, workers=workers,
            url_seconds=settings.jobs_url_seconds,
        )  # fmt: skip
    service.start()
    return service
