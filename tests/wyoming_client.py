"""The real ``wyoming`` client (``AsyncTcpClient``) driven the way Home Assistant drives a
voice service: describe, synthesize (whole or streamed), transcribe. For the tests of the
Wyoming door (test_server_wyoming.py on the fake engine, test_wyoming_live.py on the real
models)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

HOST = "127.0.0.1"
#: Seconds any one event may take to arrive before a test fails.
READ_TIMEOUT = 60.0


@dataclass
class Reply:
    """What the server sent for one request."""

    events: list[Event] = field(default_factory=list)
    rate: int = 0
    width: int = 0
    channels: int = 0
    pcm: bytes = b""
    error: Error | None = None

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]

    @property
    def samples(self) -> int:
        return len(self.pcm) // 2


def connect(port: int) -> AsyncTcpClient:
    return AsyncTcpClient(HOST, port, connect_timeout=10, read_timeout=READ_TIMEOUT)


async def read_until(client: AsyncTcpClient, *last: str) -> Reply:
    """Events until one of type ``last`` (or an error); audio gathered."""
    reply = Reply()
    while True:
        event = await client.read_event()
        assert event is not None, f"connection closed before {last}: got {reply.types}"
        reply.events.append(event)
        if AudioStart.is_type(event.type):
            start = AudioStart.from_event(event)
            reply.rate, reply.width, reply.channels = start.rate, start.width, start.channels
        elif AudioChunk.is_type(event.type):
            reply.pcm += AudioChunk.from_event(event).audio
        elif Error.is_type(event.type):
            reply.error = Error.from_event(event)
            return reply
        if event.type in last:
            return reply


async def describe(port: int) -> Info:
    async with connect(port) as client:
        await client.write_event(Describe().event())
        event = await client.read_event()
        assert event is not None
        assert Info.is_type(event.type), event
        return Info.from_event(event)


def synthesize_event(
    text: str, voice: str | None = None, params: dict[str, Any] | None = None
) -> Event:
    event = Synthesize(text, voice=SynthesizeVoice(name=voice) if voice else None).event()
    if params is not None:
        event.data["voxserve"] = params
    return event


async def synthesize(
    port: int, text: str, voice: str | None = None, params: dict[str, Any] | None = None
) -> Reply:
    async with connect(port) as client:
        await client.write_event(synthesize_event(text, voice, params))
        return await read_until(client, AudioStop().event().type)


async def stream(
    port: int,
    pieces: Sequence[str],
    voice: str | None = None,
    params: dict[str, Any] | None = None,
    *,
    compat: bool = True,
) -> Reply:
    """A streamed synthesis as Home Assistant sends it: start, the text piece by piece,
    the whole text again as a synthesize (for servers that do not stream; ``compat``),
    stop. Read while writing, as a client that plays the audio does."""
    async with connect(port) as client:
        start = SynthesizeStart(voice=SynthesizeVoice(name=voice) if voice else None).event()
        if params is not None:
            start.data["voxserve"] = params
        reader = asyncio.create_task(read_until(client, SynthesizeStopped().event().type))
        await client.write_event(start)
        for piece in pieces:
            await client.write_event(SynthesizeChunk(piece).event())
        if compat:
            await client.write_event(synthesize_event("".join(pieces), voice))
        await client.write_event(SynthesizeStop().event())
        return await reader


async def transcribe(
    port: int,
    pcm: bytes,
    *,
    rate: int = 16_000,
    width: int = 2,
    channels: int = 1,
    model: str | None = None,
    samples_per_chunk: int = 1024,
) -> Reply:
    """Send ``pcm`` as Home Assistant streams a microphone; read to transcript-stop."""
    async with connect(port) as client:
        await client.write_event(Transcribe(name=model).event())
        await client.write_event(AudioStart(rate, width, channels).event())
        step = samples_per_chunk * width * channels
        for start in range(0, len(pcm), step):
            chunk = AudioChunk(rate, width, channels, pcm[start : start + step])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        return await read_until(client, TranscriptStop().event().type)


def transcript(reply: Reply) -> str:
    """The text of the ``transcript`` event (checked against the chunks before it)."""
    (final,) = [Transcript.from_event(e) for e in reply.events if Transcript.is_type(e.type)]
    chunks = [
        TranscriptChunk.from_event(e).text for e in reply.events if e.type == "transcript-chunk"
    ]
    assert "".join(chunks) == final.text
    return final.text
