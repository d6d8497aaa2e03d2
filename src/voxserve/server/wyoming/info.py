"""What a Wyoming ``describe`` is answered with: the voices and speech recognition models.

Every installed voice is one TTS voice of the ``voxserve`` program (Home Assistant lists
them by language), and every installed Whisper model one model of the ``voxserve-whisper``
ASR program. Speakers of a multi-speaker Piper voice are named as its ``speaker_id_map``
names them (a request may also give the number).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Info,
    TtsProgram,
    TtsVoice,
    TtsVoiceSpeaker,
)

from voxserve.asr import Transcriber
from voxserve.engines.piper_model import read_config
from voxserve.errors import InvalidParameter, VoiceLoadError
from voxserve.types import Voice

#: The names of the programs in ``info``.
TTS_PROGRAM = "voxserve"
ASR_PROGRAM = "voxserve-whisper"

_VOXSERVE = Attribution(name="voxserve", url="")  # self-hosted: no address of its own
_ATTRIBUTION = {
    "piper": Attribution(name="rhasspy", url="https://github.com/rhasspy/piper"),
    "espeak": Attribution(name="eSpeak NG", url="https://github.com/espeak-ng/espeak-ng"),
}
_WHISPER = Attribution(name="OpenAI Whisper", url="https://github.com/openai/whisper")


def describe(voices: Sequence[Voice], transcriber: Transcriber | None, *, version: str) -> Info:
    """The ``info`` event's content for these voices and models."""
    tts = TtsProgram(
        name=TTS_PROGRAM,
        description="voxserve: Piper and espeak-ng voices, sentence by sentence",
        attribution=_VOXSERVE,
        installed=True,
        version=version,
        voices=[_voice(v) for v in voices],
        supports_synthesize_streaming=True,
    )
    asr = []
    if transcriber is not None:
        asr.append(
            AsrProgram(
                name=ASR_PROGRAM,
                description="voxserve: Whisper on faster-whisper",
                attribution=_VOXSERVE,
                installed=True,
                version=version,
                models=[_model(transcriber, model_id) for model_id in transcriber.models],
                supports_transcript_streaming=True,
            )
        )
    return Info(tts=[tts], asr=asr)


def _voice(voice: Voice) -> TtsVoice:
    names = speaker_names(voice)
    return TtsVoice(
        name=voice.id,
        description=f"{voice.id} ({voice.language}, {voice.engine}, {voice.quality})",
        attribution=_ATTRIBUTION.get(voice.engine, _VOXSERVE),
        installed=True,
        version=voice.digest[:12] or None,
        languages=[language_tag(voice.language)],
        speakers=[TtsVoiceSpeaker(name=n) for n in names] if len(names) > 1 else None,
    )


def language_tag(code: str) -> str:
    """A voice's language as Piper and Home Assistant write it: ``en_US`` for espeak-ng's
    ``en-us`` (or ``en_us``); codes without a two-letter region stay as they are."""
    parts = code.replace("-", "_").split("_")
    if len(parts) >= 2 and len(parts[1]) == 2 and parts[1].isalpha():
        parts = [parts[0].lower(), parts[1].upper(), *parts[2:]]
    return "_".join(parts)


def _model(transcriber: Transcriber, model_id: str) -> AsrModel:
    model = transcriber.models[model_id]
    loaded = next((r for r in transcriber.loaded() if r.model.id == model_id), None)
    if loaded is not None:
        languages = list(loaded.languages)
    elif model.english_only:
        languages = ["en"]
    else:
        languages = list(_whisper_languages())
    return AsrModel(
        name=model.id,
        description=f"Whisper {model.id.removeprefix('whisper-')}"
        + (" (English only)" if model.english_only else ""),
        attribution=_WHISPER,
        installed=True,
        version=None,
        languages=languages,
    )


@functools.cache
def _whisper_languages() -> tuple[str, ...]:
    # The languages of a multilingual model not loaded yet (loading it to answer a
    # describe would take seconds): faster-whisper's own list, which the model reports
    # once loaded.
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return tuple(_LANGUAGE_CODES)


def speaker_names(voice: Voice) -> list[str]:
    """The voice's speakers by name (by number where its config names none)."""
    if voice.num_speakers <= 1:
        return []
    mapping = _speaker_map(voice.config_path)
    by_id = {i: name for name, i in mapping.items()}
    return [by_id.get(i, str(i)) for i in range(voice.num_speakers)]


def speaker_id(voice: Voice, speaker: str | None) -> int | None:
    """The speaker number a Wyoming ``voice.speaker`` names: a name from the voice's
    config or a number; InvalidParameter otherwise."""
    if speaker is None or speaker == "":
        return None
    mapping = _speaker_map(voice.config_path) if voice.num_speakers > 1 else {}
    if speaker in mapping:
        return mapping[speaker]
    if speaker.isdigit() and int(speaker) < max(voice.num_speakers, 1):
        return int(speaker)
    listed = ", ".join(speaker_names(voice)) or "0 (it has one speaker)"
    raise InvalidParameter(
        f"Voice {voice.id!r} has no speaker {speaker!r}. Speakers: {listed}.",
        param="voice.speaker",
    )


@functools.cache
def _speaker_map(config_path: Path | None) -> dict[str, int]:
    if config_path is None:
        return {}
    try:
        mapping = read_config(config_path).get("speaker_id_map") or {}
    except VoiceLoadError:
        return {}
    return {str(name): int(i) for name, i in mapping.items()}
