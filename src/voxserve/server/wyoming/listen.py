"""Speech to text for Wyoming clients: ``transcribe``, then the recording as
``audio-start``, ``audio-chunk``s and ``audio-stop``; the answer is ``transcript``.

The recording arrives as raw PCM at whatever rate, width and channels its
``audio-start`` says (Home Assistant: 16 kHz, 16-bit, mono). It is kept as float samples,
bounded by ``VOXSERVE_ASR_MAX_SECONDS``, resampled to Whisper's 16 kHz at the end, and
recognized like an upload (:class:`voxserve.asr.Transcriber`): admitted as background
work, window by window on the lanes. Each window's text goes back as a
``transcript-chunk`` as soon as it is heard (``transcript-start`` first), then the whole
``transcript`` and ``transcript-stop``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from wyoming.asr import Transcript, TranscriptChunk, TranscriptStart, TranscriptStop

from voxserve.admission import Admission
from voxserve.asr import Transcriber, to_whisper_rate
from voxserve.errors import AudioTooLong, InvalidAudio
from voxserve.logs import annotate
from voxserve.server.wyoming.speak import Send
from voxserve.types import FloatArray

#: Sample widths taken, in bytes, and how each is read.
_WIDTHS: dict[int, np.dtype[np.integer[Any]]] = {
    1: np.dtype("u1"), 2: np.dtype("<i2"), 4: np.dtype("<i4"),
}  # fmt: skip


@dataclass
class Recording:
    """A recording being received: its format, from ``audio-start``, and its samples."""

    max_seconds: float
    model: str | None = None
    """The model a ``transcribe`` named (None: the default)."""
    language: str | None = None
    rate: int = 16_000
    width: int = 2
    channels: int = 1
    _parts: list[FloatArray] = field(default_factory=list)
    _samples: int = 0

    def start(self, rate: int, width: int, channels: int) -> None:
        """The format of the audio to come (``audio-start``); InvalidAudio if not taken."""
        if width not in _WIDTHS or channels < 1 or not 1000 <= rate <= 192_000:
            raise InvalidAudio(
                f"Cannot take audio of {rate} Hz, {width} bytes per sample, {channels} "
                "channels: send PCM of 1, 2 or 4 bytes per sample (Home Assistant sends "
                "16000 Hz, 2 bytes, 1 channel).",
                param="audio-start",
            )
        self.rate, self.width, self.channels = rate, width, channels

    def add(self, pcm: bytes, rate: int, width: int, channels: int) -> None:
        """One ``audio-chunk``'s payload; AudioTooLong past ``max_seconds``."""
        if (rate, width, channels) != (self.rate, self.width, self.channels):
            if self._samples:
                raise InvalidAudio(
                    "The audio changed format mid-recording; send one format per recording.",
                    param="audio-chunk",
                )
            self.start(rate, width, channels)  # a chunk's own format wins, checked the same
        frame = width * channels
        usable = len(pcm) - len(pcm) % frame
        ints = np.frombuffer(pcm[:usable], dtype=_WIDTHS[width])
        if width == 1:
            samples = (ints.astype(np.float32) - 128.0) / 128.0
        else:
            samples = ints.astype(np.float32) / float(2 ** (8 * width - 1))
        if channels > 1:
            samples = samples.reshape(-1, channels).mean(axis=1)
        self._samples += samples.size
        if self._samples > self.max_seconds * self.rate:
            raise AudioTooLong(self.max_seconds, param="audio-chunk")
        self._parts.append(samples.astype(np.float32, copy=False))

    @property
    def seconds(self) -> float:
        return self._samples / self.rate

    def audio(self) -> FloatArray:
        """The whole recording at 16 kHz, mono."""
        samples = np.concatenate(self._parts) if self._parts else np.zeros(0, np.float32)
        return to_whisper_rate(samples, self.rate)


async def transcribe(
    recording: Recording, listener: Transcriber, admission: Admission, send: Send
) -> str:
    """Recognize ``recording`` and send the transcript events; returns the text."""
    model = listener.model(recording.model or None)
    recognizer = await listener.load(model)
    audio = recording.audio()
    if audio.size == 0:  # nothing was sent: nothing to recognize
        for event in (TranscriptStart(), Transcript(text=""), TranscriptStop()):
            await send(event.event())
        return ""
    options = listener.options(recognizer, audio, language=recording.language or None)
    ticket = admission.admit(listener.costs(model, audio), footprint=1, background=True)
    try:
        info, segments = await listener.start(recognizer, audio, options, on_window=ticket.done)
        annotate(model=model.id, audio_seconds=round(info.duration, 3))
        await send(TranscriptStart(language=info.language).event())
        parts: list[str] = []
        async for segment in segments:
            text = segment.text.strip()
            if text:
                await send(TranscriptChunk(f" {text}" if parts else text).event())
                parts.append(text)
    finally:
        ticket.close()
    text = " ".join(parts)
    annotate(characters=len(text))
    await send(Transcript(text=text, language=info.language).event())
    await send(TranscriptStop().event())
    return text
