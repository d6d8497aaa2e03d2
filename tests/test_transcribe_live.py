"""Speech to text for real: the bundled Whisper model in a real server, driven by the
official ``openai`` client, hearing what voxserve's own voice said.

The word error rate bound, 0.15: Whisper tiny.en on the bundled Piper voice measured
0-5.7 % per run of eight sentences, 1.9 % on average (src/voxserve/asr/wer.py); Piper
samples noise, so every synthesis differs. 0.15 leaves room for two near-homophones in
this paragraph's 40 words and still fails a transcript of the wrong audio (WER ~0.9).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest
import soundfile
import srt
import webvtt

from live import LiveServer
from voxserve.asr.wer import word_error_rate

pytestmark = pytest.mark.slow

PARAGRAPH = (
    "The library opens at nine in the morning and closes at six in the evening. "
    "Children can borrow up to five books at a time. "
    "Please return them within three weeks, or ask the desk to renew them."
)
WER_BOUND = 0.15


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer() as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def speech(client: openai.OpenAI) -> bytes:
    """The paragraph, said by the bundled voice, as WAV."""
    return client.audio.speech.create(
        model="tts-1", voice="alloy", input=PARAGRAPH, response_format="wav"
    ).content


def duration(wav: bytes) -> float:
    info = soundfile.info(io.BytesIO(wav))
    return float(info.frames / info.samplerate)


def longer(wav: bytes, times: int) -> bytes:
    """``wav`` said ``times`` over, a second of silence between."""
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    gap = np.zeros(rate, dtype=np.float32)
    out = io.BytesIO()
    soundfile.write(out, np.concatenate([samples, gap] * times), rate, format="WAV")
    return out.getvalue()


def test_every_response_format_says_the_paragraph(client: openai.OpenAI, speech: bytes) -> None:
    api = client.audio.transcriptions
    upload = ("speech.wav", speech)
    seconds = duration(speech)

    text = api.create(file=upload, model="whisper-1").text
    assert word_error_rate(PARAGRAPH, text) <= WER_BOUND, text
    plain = api.create(file=upload, model="whisper-1", response_format="text")
    assert word_error_rate(PARAGRAPH, plain) <= WER_BOUND, plain

    for fmt, parse in (("srt", srt.parse), ("vtt", lambda s: webvtt.from_buffer(io.StringIO(s)))):
        cues = list(parse(api.create(file=upload, model="whisper-1", response_format=fmt)))
        assert cues, fmt
        said = " ".join(cue.content if fmt == "srt" else cue.text for cue in cues)
        assert word_error_rate(PARAGRAPH, said) <= WER_BOUND, said
        if fmt == "srt":
            times = [(c.start.total_seconds(), c.end.total_seconds()) for c in cues]
        else:
            times = [(c.start_in_seconds, c.end_in_seconds) for c in cues]
        assert all(0 <= start <= end <= seconds + 0.5 for start, end in times), times
        assert all(a[1] <= b[0] + 0.01 for a, b in itertools.pairwise(times))

    verbose = api.create(
        file=upload, model="whisper-1", response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )  # fmt: skip
    assert word_error_rate(PARAGRAPH, verbose.text) <= WER_BOUND
    assert verbose.duration == pytest.approx(seconds, abs=0.05)
    assert verbose.language == "en"
    words = verbose.words or []
    assert len(words) >= 30
    starts = [w.start for w in words]
    assert starts == sorted(starts), "word timestamps go back in time"
    assert all(0 <= w.start <= w.end <= seconds + 0.5 for w in words)
    assert verbose.segments


def test_mp3_and_opus_uploads(client: openai.OpenAI) -> None:
    for fmt in ("mp3", "opus"):
        audio = client.audio.speech.create(
            model="tts-1", voice="alloy", input=PARAGRAPH, response_format=fmt
        ).content
        text = client.audio.transcriptions.create(
            file=(f"speech.{'ogg' if fmt == 'opus' else fmt}", audio), model="whisper-1"
        ).text
        assert word_error_rate(PARAGRAPH, text) <= WER_BOUND, (fmt, text)


def test_silence_is_empty_text(client: openai.OpenAI) -> None:
    out = io.BytesIO()
    soundfile.write(out, np.zeros(16_000 * 3, np.float32), 16_000, format="WAV")
    result = client.audio.transcriptions.create(
        file=("quiet.wav", out.getvalue()), model="whisper-1"
    )
    assert result.text == ""


def test_streaming_sends_text_before_the_whole_recording_is_heard(
    client: openai.OpenAI, speech: bytes
) -> None:
    audio = longer(speech, 10)  # about 150 s: five windows of 30 s
    started = time.perf_counter()
    arrivals: list[float] = []
    events = []
    for event in client.audio.transcriptions.create(
        file=("long.wav", audio), model="whisper-1", stream=True
    ):
        arrivals.append(time.perf_counter() - started)
        events.append(event)
    assert events[-1].type == "transcript.text.done"
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    assert len(deltas) >= 5
    assert "".join(e.delta for e in deltas) == events[-1].text  # type: ignore[union-attr]
    assert arrivals[0] < 0.6 * arrivals[-1], arrivals


def test_a_corrupt_upload_is_400_and_the_next_one_is_heard(
    client: openai.OpenAI, speech: bytes
) -> None:
    corrupt = bytearray(speech)
    corrupt[:64] = bytes(64)
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(file=("bad.wav", bytes(corrupt)), model="whisper-1")
    assert caught.value.body["param"] == "file"  # type: ignore[index]
    text = client.audio.transcriptions.create(file=("ok.wav", speech), model="whisper-1").text
    assert word_error_rate(PARAGRAPH, text) <= WER_BOUND


# The openai package marks translations.create deprecated; it is still OpenAI's route.
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_translation_runs_on_the_multilingual_model(client: openai.OpenAI, speech: bytes) -> None:
    result = client.audio.translations.create(file=("speech.wav", speech), model="whisper-1")
    # English in, English out: Whisper base hears a little worse than tiny.en here.
    assert word_error_rate(PARAGRAPH, result.text) <= 0.3, result.text
    with pytest.raises(openai.BadRequestError, match="English only"):
        client.audio.translations.create(file=("speech.wav", speech), model="whisper-tiny.en")


def test_speech_gets_its_first_audio_while_eight_long_uploads_are_heard(speech: bytes) -> None:
    """Fairness: while the uploads hold the background share of the lanes, a short
    speech request waits for at most one recognition step (a 30 s window: 0.3-0.8 s on
    one core). Measured on the 2-core machine: 0.10-0.12 s to the first audio in three
    runs. The bound, 2 s, is one step and a synthesis with room for a busy machine; queued
    first come first served behind eight uploads' steps, it would be several steps."""
    upload = longer(speech, 4)  # about 60 s each
    # Eight minutes of audio is more work than the default wait bound admits at once.
    with LiveServer({"VOXSERVE_MAX_WAIT_SECONDS": "300"}) as server:
        first_audio, statuses = asyncio.run(_eight_uploads_and_a_question(server, upload))
    assert statuses == [200] * 8
    assert first_audio < 2.0, f"first audio after {first_audio:.2f} s"


async def _eight_uploads_and_a_question(
    server: LiveServer, upload: bytes
) -> tuple[float, list[int]]:
    """Seconds to the first audio of a short speech request sent while eight uploads are
    being transcribed, and the uploads' statuses."""
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:

        async def transcribe() -> int:
            response = await http.post(
                "/v1/audio/transcriptions", data={"model": "whisper-1"},
                files={"file": ("long.wav", upload)},
            )  # fmt: skip
            return response.status_code

        uploads = [asyncio.create_task(transcribe()) for _ in range(8)]
        # Wait until recognition is under way (the uploads admitted, steps running).
        deadline = time.monotonic() + 60
        while (
            "voxserve_asr_inference_seconds_count"
            not in (await http.get(server.metrics_url + "/metrics")).text
        ):
            assert time.monotonic() < deadline, "no recognition step within 60 s"
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        async with http.stream(
            "POST", "/v1/audio/speech",
            json={"model": "tts-1", "voice": "alloy", "input": "Is it my turn?",
                  "response_format": "pcm"},
        ) as response:  # fmt: skip
            assert response.status_code == 200
            async for _chunk in response.aiter_bytes():
                break
            first_audio = time.perf_counter() - started
        return first_audio, list(await asyncio.gather(*uploads))


def test_say_then_transcribe_on_the_command_line() -> None:
    said = subprocess.run(
        [sys.executable, "-m", "voxserve", "say", PARAGRAPH, "-o", "-", "-q"],
        capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    heard = subprocess.run(
        [sys.executable, "-m", "voxserve", "transcribe", "-"],
        input=said.stdout, capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    assert word_error_rate(PARAGRAPH, heard.stdout.decode()) <= WER_BOUND
