"""HTTP request and response models (pydantic lives only at the edges)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from voxserve.audio import FORMATS as AUDIO_FORMATS
from voxserve.server.openai_voices import OPENAI_VOICES
from voxserve.types import (
    NOISE_RANGE,
    SAMPLE_RATE_RANGE,
    SILENCE_RANGE,
    SPEED_RANGE,
    VOLUME_RANGE,
    SynthesisParams,
)

#: Model names accepted by /v1/audio/speech: OpenAI's TTS models (the speech request's
#: ``model`` in tests/openai_spec/audio.json) and voxserve's own. Every one is answered by
#: the voice asked for; an installed voice id is accepted as a model name too.
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15", "voxserve")

#: The audio formats, in the audio package's one table.
FORMATS = tuple(AUDIO_FORMATS)


class CustomVoice(BaseModel):
    """OpenAI's custom-voice reference, ``{"id": "voice_1234"}``: here an installed voice
    id, or a name ``VOXSERVE_VOICE_MAP`` maps to one."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., description="An installed voice id, or a key of VOXSERVE_VOICE_MAP.")


class SpeechRequest(BaseModel):
    """OpenAI's ``POST /v1/audio/speech`` body, plus voxserve's own optional fields."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field("tts-1", description=f"One of {', '.join(MODELS)}.")
    input: str = Field(..., description="The text to speak.")
    voice: str | CustomVoice = Field(
        "alloy",
        description="An installed voice id; an OpenAI voice name "
        f"({', '.join(OPENAI_VOICES)}), mapped by VOXSERVE_VOICE_MAP and otherwise to the "
        'default voice; or {"id": ...}: an installed voice id or a key of VOXSERVE_VOICE_MAP.',
    )
    response_format: str = Field(
        "mp3",
        description=f"Audio format: {', '.join(FORMATS)}.",
        json_schema_extra={"enum": list(FORMATS)},
    )
    speed: float = Field(1.0, ge=SPEED_RANGE[0], le=SPEED_RANGE[1], description="Speaking rate.")
    stream_format: Literal["audio", "sse"] = Field(
        "audio",
        description="'audio': chunked audio bytes; 'sse': server-sent events with base64 chunks.",
    )
    instructions: str | None = Field(
        None,
        description="Accepted and ignored: a Piper or espeak-ng voice has no style prompt. "
        "Use speed (and volume, noise_scale) for what they can change.",
    )
    # voxserve extensions
    stream: bool = Field(
        True,
        description="Send audio sentence by sentence as it is made (default). false: one "
        "complete file with Content-Length (and a WAV header with real sizes).",
    )
    volume: float = Field(1.0, ge=VOLUME_RANGE[0], le=VOLUME_RANGE[1])
    sample_rate: int | None = Field(None, ge=SAMPLE_RATE_RANGE[0], le=SAMPLE_RATE_RANGE[1])
    noise_scale: float | None = Field(None, ge=NOISE_RANGE[0], le=NOISE_RANGE[1])
    noise_w: float | None = Field(None, ge=NOISE_RANGE[0], le=NOISE_RANGE[1])
    sentence_silence: float = Field(0.2, ge=SILENCE_RANGE[0], le=SILENCE_RANGE[1])
    input_type: Literal["auto", "text", "ssml"] = Field(
        "auto",
        description="'auto': input starting with <speak> is SSML (docs/ssml.md); 'text': "
        "always plain text; 'ssml': always SSML.",
    )
    timestamps: Literal["words", "srt", "vtt"] | None = Field(
        None,
        description="voxserve: each word's start and end in the audio (docs/captions.md). "
        "'words': with stream_format=sse a speech.audio.words event before each sentence's "
        "audio, else one JSON object with the audio (base64) and its words; 'srt' or 'vtt': "
        "the captions of the speech instead of the audio. Piper voices only.",
    )

    def params(self) -> SynthesisParams:
        return SynthesisParams(
            speed=self.speed, volume=self.volume, sample_rate=self.sample_rate,
            noise_scale=self.noise_scale, noise_w=self.noise_w,
            sentence_silence=self.sentence_silence,
        )  # fmt: skip


class VoiceInfo(BaseModel):
    id: str
    name: str
    language: str
    sample_rate: int
    engine: str
    quality: str


class VoiceList(BaseModel):
    voices: list[VoiceInfo]
    default: str
    aliases: dict[str, str] = Field(description="OpenAI voice names and the voice each maps to.")


class ModelInfo(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "voxserve"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelInfo]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
