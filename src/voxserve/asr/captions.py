"""A transcription in the response formats of OpenAI's speech-to-text API.

``json`` and ``verbose_json`` are OpenAI's objects; ``text`` is the transcript alone;
``srt`` and ``vtt`` are subtitles, one cue per segment, written by :mod:`voxserve.captions`
as the captions of synthesized speech are.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, Final

from voxserve.asr.service import Transcription
from voxserve.asr.whisper import Segment, Task
from voxserve.captions import Cue, srt, vtt

FORMATS: Final[dict[str, str]] = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}
"""Each response format and its content type."""


def _cues(segments: list[Segment]) -> list[Cue]:
    """One cue per segment that says something."""
    return [Cue(s.start, max(s.end, s.start), s.text.strip()) for s in segments if s.text.strip()]


def usage(result: Transcription) -> dict[str, Any]:
    return {"type": "duration", "seconds": round(result.info.duration, 3)}


def verbose(
    result: Transcription, task: Task, granularities: Collection[str] = ("segment",)
) -> dict[str, Any]:
    """OpenAI's ``verbose_json``: the text, its segments and, if asked, its words."""
    body: dict[str, Any] = {
        "task": task,
        # A translation is in English whatever was spoken (OpenAI says "english"); a
        # transcription names the spoken language by its ISO-639-1 code.
        "language": "english" if task == "translate" else result.info.language,
        "duration": round(result.info.duration, 3),
        "text": result.text,
    }
    if "segment" in granularities or not granularities:
        body["segments"] = [
            {
                "id": index,
                "seek": s.seek,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text,
                "tokens": list(s.tokens),
                "temperature": s.temperature,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio,
                "no_speech_prob": s.no_speech_prob,
            }
            for index, s in enumerate(result.segments)
        ]
    if "word" in granularities:
        body["words"] = [
            {"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
            for s in result.segments
            for w in s.words
        ]
    body["usage"] = usage(result)
    return body


def render(
    result: Transcription,
    fmt: str,
    *,
    task: Task = "transcribe",
    granularities: Collection[str] = (),
) -> str:
    """The response body of ``result`` in ``fmt``, one of :data:`FORMATS`."""
    if fmt == "json":
        return json.dumps({"text": result.text, "usage": usage(result)}, ensure_ascii=False)
    if fmt == "verbose_json":
        return json.dumps(verbose(result, task, granularities), ensure_ascii=False)
    if fmt == "srt":
        return srt(_cues(result.segments))
    if fmt == "vtt":
        return vtt(_cues(result.segments))
    if fmt == "text":
        return result.text + "\n"
    raise ValueError(f"unknown transcription format {fmt!r}")
