"""The Wyoming door (voxserve.server.wyoming) on the fake engine and recognizer, with the
real ``wyoming`` client against the real server: what Home Assistant sees, the audio
against the HTTP route's, hang-ups, admission, the cache, errors and metrics (the real
models: test_wyoming_live.py)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.info import Describe
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from fake_server import FakeServer, fake_settings, wait_until
from fakes import FakeEngine, FakeRecognizer
from voxserve.errors import ConfigError
from voxserve.server.run import serve
from voxserve.server.wyoming.buffer import SentenceBuffer
from voxserve.server.wyoming.info import language_tag
from voxserve.server.wyoming.service import SERVICE_TYPE, Advertisement, advertised_host
from voxserve.server.wyoming.speak import SAMPLES_PER_CHUNK
from voxserve.settings import Settings
from wyoming_client import (
    Reply,
    connect,
    describe,
    read_until,
    stream,
    synthesize,
    synthesize_event,
    transcribe,
    transcript,
)

pytestmark = pytest.mark.inprocess

SPEECH = "/v1/audio/speech"
TEXT = "The ferry left at dawn. Gulls followed it. A boy counted the waves."


def sentences(count: int) -> str:
    return " ".join(f"Sentence number {n} is here." for n in range(count))


def counted(server: FakeServer, kind: str, outcome: str, count: int = 1) -> None:
    """Wait for the request's outcome to be counted (just after its last event)."""
    metric = "voxserve_wyoming_requests_total"
    wait_until(
        lambda: server.metric(metric, kind=kind, outcome=outcome) == count,
        timeout=5, what=f"{count} {kind} {outcome}",
    )  # fmt: skip


def http_pcm(server: FakeServer, text: str, **params: object) -> bytes:
    body = {"input": text, "response_format": "pcm", "stream": True, **params}
    response = httpx.post(server.url + SPEECH, json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.content


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(
        FakeEngine(), fake_settings(), recognizer=FakeRecognizer(), wyoming=True
    ) as running:
        yield running


# -- describe -------------------------------------------------------------------------------


def test_describe_lists_every_voice_and_model_and_says_it_streams(server: FakeServer) -> None:
    info = asyncio.run(describe(server.wyoming_port))
    (tts,) = info.tts
    assert tts.name == "voxserve"
    assert tts.installed
    assert tts.supports_synthesize_streaming
    (voice,) = tts.voices
    assert (voice.name, voice.languages, voice.installed) == ("fake-voice", ["en_US"], True)
    assert voice.description
    assert "en_US" in voice.description
    (asr,) = info.asr
    assert asr.supports_transcript_streaming
    assert [(m.name, m.languages) for m in asr.models] == [("fake-asr", ["en"])]
    assert server.metric("voxserve_wyoming_requests_total", kind="describe", outcome="ok") == 1


@pytest.mark.parametrize(
    ("code", "tag"),
    [("en_US", "en_US"), ("en-us", "en_US"), ("en_us", "en_US"), ("de", "de"), ("cmn", "cmn"),
     ("en-gb-x-rp", "en_GB_x_rp")],
)  # fmt: skip
def test_languages_are_written_as_home_assistant_writes_them(code: str, tag: str) -> None:
    assert language_tag(code) == tag


def test_without_speech_recognition_no_asr_program_and_transcribe_is_refused() -> None:
    with FakeServer(FakeEngine(), fake_settings(), wyoming=True) as server:
        assert asyncio.run(describe(server.wyoming_port)).asr == []
        reply = asyncio.run(transcribe(server.wyoming_port, b"\x00\x01" * 4000))
        assert reply.error is not None
        assert "VOXSERVE_ASR" in reply.error.text

        async def errors_for_one_recording() -> list[str]:
            async with connect(server.wyoming_port) as client:
                for event in (Transcribe(), AudioStart(16_000, 2, 1)):
                    await client.write_event(event.event())
                for _ in range(5):
                    await client.write_event(AudioChunk(16_000, 2, 1, bytes(2048)).event())
                await client.write_event(AudioStop().event())
                await client.write_event(Describe().event())
                types: list[str] = []
                while not types or types[-1] != "info":
                    event = await client.read_event()
                    assert event is not None
                    types.append(event.type)
                return types

        assert asyncio.run(errors_for_one_recording()) == ["error", "info"]


# -- synthesize -----------------------------------------------------------------------------


def test_synthesize_sends_the_http_routes_pcm_in_chunks(server: FakeServer) -> None:
    reply = asyncio.run(synthesize(server.wyoming_port, TEXT))
    assert reply.error is None
    assert reply.types[0] == "audio-start"
    assert reply.types[-1] == "audio-stop"
    assert set(reply.types[1:-1]) == {"audio-chunk"}
    assert (reply.rate, reply.width, reply.channels) == (8000, 2, 1)
    chunks = [AudioChunk.from_event(e) for e in reply.events if e.type == "audio-chunk"]
    assert max(c.samples for c in chunks) <= SAMPLES_PER_CHUNK
    assert reply.pcm == http_pcm(server, TEXT)
    assert sorted(server.engine.inferred()) == sorted([
        "The ferry left at dawn.", "Gulls followed it.", "A boy counted the waves.",
    ] * 2)  # fmt: skip
    counted(server, "synthesize", "ok")
    ttfa = "voxserve_time_to_first_audio_seconds_count"
    assert server.metric(ttfa, route="wyoming/synthesize", format="pcm") == 1


def test_synthesis_parameters_ride_in_the_voxserve_object(server: FakeServer) -> None:
    params = {"volume": 0.5, "sentence_silence": 0.5}
    reply = asyncio.run(synthesize(server.wyoming_port, TEXT, params=params))
    assert reply.pcm == http_pcm(server, TEXT, **params)
    bad = asyncio.run(synthesize(server.wyoming_port, TEXT, params={"volume": 9}))
    assert bad.error is not None
    assert bad.error.code == "invalid_parameter"
    assert "volume" in bad.error.text
    unknown = asyncio.run(synthesize(server.wyoming_port, TEXT, params={"pitch": 1}))
    assert unknown.error is not None
    assert "pitch" in unknown.error.text


def test_a_bad_voice_gets_an_error_naming_it_and_the_connection_goes_on(
    server: FakeServer,
) -> None:
    async def run() -> tuple[Reply, Reply, Reply]:
        async with connect(server.wyoming_port) as client:
            await client.write_event(synthesize_event("Hello.", voice="en_US-nobody"))
            bad = await read_until(client, "audio-stop")
            speaker = Synthesize("Hello.", voice=SynthesizeVoice(name="fake-voice", speaker="7"))
            await client.write_event(speaker.event())
            no_speaker = await read_until(client, "audio-stop")
            await client.write_event(synthesize_event("Hello.", voice="fake-voice"))
            good = await read_until(client, "audio-stop")
            return bad, no_speaker, good

    bad, no_speaker, good = asyncio.run(run())
    assert bad.error is not None
    assert bad.error.code == "voice_not_found"
    assert "en_US-nobody" in bad.error.text
    assert "fake-voice" in bad.error.text
    assert bad.types == ["error"]
    assert no_speaker.error is not None
    assert "7" in no_speaker.error.text
    assert good.error is None
    assert good.samples > 0
    counted(server, "synthesize", "error", 2)


def test_a_voice_chosen_by_language_or_refused_for_a_language_none_speaks(
    server: FakeServer,
) -> None:
    async def run(language: str) -> Reply:
        async with connect(server.wyoming_port) as client:
            event = Synthesize("Hello.", voice=SynthesizeVoice(language=language)).event()
            await client.write_event(event)
            return await read_until(client, "audio-stop")

    assert asyncio.run(run("en")).samples > 0
    assert asyncio.run(run("en-US")).samples > 0
    refused = asyncio.run(run("de_DE"))
    assert refused.error is not None
    assert "de_DE" in refused.error.text


def test_empty_text_is_an_error_event(server: FakeServer) -> None:
    reply = asyncio.run(synthesize(server.wyoming_port, " ... "))
    assert reply.error is not None
    assert reply.error.code == "empty_input"


def test_the_home_assistant_pages_python_example_works(server: FakeServer) -> None:
    """docs/home-assistant.md's client, as written but for the port and the voice."""
    page = Path(__file__).parents[1] / "docs" / "home-assistant.md"
    (code,) = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    code = code.replace("10200", str(server.wyoming_port)).replace("en_US-joe-medium", "fake-voice")
    scope: dict[str, object] = {}
    exec(compile(code, str(page), "exec"), scope)
    assert scope["pcm"] == http_pcm(server, "The kitchen lights are on.")


# -- streaming ------------------------------------------------------------------------------


def test_text_streamed_word_by_word_sounds_as_the_whole_text(server: FakeServer) -> None:
    words = [w + " " for w in TEXT.split()]
    reply = asyncio.run(stream(server.wyoming_port, words))
    assert reply.error is None
    assert reply.types[0] == "audio-start"
    assert reply.types[-2:] == ["audio-stop", "synthesize-stopped"]
    assert reply.pcm == http_pcm(server, TEXT)
    # The whole text sent again as a synthesize (for servers that do not stream) is not
    # spoken a second time.
    assert server.engine.inferred().count("Gulls followed it.") == 2
    counted(server, "synthesize-stream", "ok")


def test_a_stream_speaks_each_sentence_before_the_text_ends(server: FakeServer) -> None:
    """The first sentence's audio arrives while the stream is still open."""

    async def run() -> Reply:
        async with connect(server.wyoming_port) as client:
            await client.write_event(Describe().event())
            await read_until(client, "info")
            await client.write_event(SynthesizeStart().event())
            await client.write_event(SynthesizeChunk("First one is done. Second").event())
            first = await read_until(client, "audio-chunk")  # before any stop was sent
            await client.write_event(SynthesizeChunk(" comes later.").event())
            await client.write_event(SynthesizeStop().event())
            rest = await read_until(client, "synthesize-stopped")
            first.events += rest.events
            first.pcm += rest.pcm
            return first

    reply = asyncio.run(run())
    assert reply.pcm == http_pcm(server, "First one is done. Second comes later.")


def test_a_stream_in_pieces_that_split_nothing_still_speaks_at_the_stop(
    server: FakeServer,
) -> None:
    reply = asyncio.run(stream(server.wyoming_port, ["No sentence", " end here"], compat=False))
    assert reply.pcm == http_pcm(server, "No sentence end here")


def test_a_chunk_without_a_stream_is_an_error(server: FakeServer) -> None:
    async def run() -> Reply:
        async with connect(server.wyoming_port) as client:
            await client.write_event(SynthesizeChunk("Hello.").event())
            return await read_until(client, "never")

    reply = asyncio.run(run())
    assert reply.error is not None
    assert "synthesize-start" in reply.error.text


@given(st.lists(st.text(alphabet="ab .!?\n", max_size=12), max_size=12))
def test_the_sentence_buffer_hands_back_all_the_text_but_whitespace(pieces: list[str]) -> None:
    buffer = SentenceBuffer(max_chars=20)
    out = [buffer.add(piece) for piece in pieces]
    out.append(buffer.finish())
    assert "".join("".join(out).split()) == "".join("".join(pieces).split())


def test_the_sentence_buffer_waits_for_what_follows_an_end() -> None:
    buffer = SentenceBuffer(max_chars=400)
    assert buffer.add("It costs 3.") == ""  # maybe 3.50
    assert buffer.add("50 dollars. Dr.") == "It costs 3.50 dollars."
    assert buffer.add(" Smith") == ""  # "Dr." ends no sentence
    assert buffer.add(" agrees. Then") == "Dr. Smith agrees."
    assert buffer.finish() == "Then"


def test_the_sentence_buffer_cuts_a_long_run_without_an_end_at_a_space() -> None:
    buffer = SentenceBuffer(max_chars=20)
    assert buffer.add("one two three four") == ""
    assert buffer.add(" five six") == "one two three four"
    assert buffer.finish() == "five six"


# -- hang-ups, admission, cache, interleaving --------------------------------------------------


def test_a_client_that_hangs_up_mid_synthesis_cancels_the_rest() -> None:
    """40 sentences at 50 ms each; the client reads its first audio and goes. The
    sentences not yet made never reach the engine, and the connection's work is given back."""
    engine = FakeEngine(seconds_per_call=0.05, batching=False)
    with FakeServer(engine, fake_settings(), wyoming=True) as server:

        async def hang_up() -> None:
            async with connect(server.wyoming_port) as client:
                await client.write_event(synthesize_event(sentences(40)))
                await read_until(client, "audio-chunk")

        asyncio.run(hang_up())
        counted(server, "synthesize", "cancelled")
        wait_until(lambda: server.responder.admission.admitted == 0, timeout=2, what="ticket")
        assert server.metric("voxserve_requests_abandoned_total", reason="disconnected") == 1
        # Another request goes through the same scheduler: nothing of the first is left.
        assert asyncio.run(synthesize(server.wyoming_port, "After.")).samples > 0
        inferred = engine.inferred()
        assert inferred[-1] == "After."
        assert len(inferred) < 10
        assert "Sentence number 39 is here." not in inferred
        wait_until(
            lambda: server.metric("voxserve_wyoming_connections") == 0,
            timeout=5, what="the connections to be closed",
        )  # fmt: skip


def test_a_client_that_stops_reading_is_dropped_and_its_work_cancelled() -> None:
    engine = FakeEngine(samples_per_char=4000)
    with FakeServer(engine, fake_settings(send_timeout_seconds=0.5), wyoming=True) as server:
        sock = socket.create_connection(("127.0.0.1", server.wyoming_port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            data = json.dumps(synthesize_event(sentences(20)).data).encode()
            header = json.dumps({"type": "synthesize", "data_length": len(data)}).encode()
            sock.sendall(header + b"\n" + data)  # and then read nothing
            wait_until(
                lambda: server.metric(
                    "voxserve_requests_abandoned_total", reason="stopped_reading"
                ) == 1,
                timeout=20, what="the stalled send to time out",
            )  # fmt: skip
            wait_until(lambda: server.responder.admission.admitted == 0, timeout=2, what="ticket")
        finally:
            sock.close()
        assert len(engine.inferred()) < 20


def test_admission_refuses_with_an_overloaded_error_before_any_audio() -> None:
    engine = FakeEngine(seconds_per_call=0.2)
    with FakeServer(engine, fake_settings(max_wait_seconds=1.0), wyoming=True) as server:

        async def run() -> Reply:
            async with connect(server.wyoming_port) as first, connect(server.wyoming_port) as late:
                await first.write_event(synthesize_event(sentences(50)))
                await read_until(first, "audio-chunk")  # admitted and speaking
                await late.write_event(synthesize_event("Me too."))
                return await read_until(late, "audio-stop")

        refused = asyncio.run(run())
        assert refused.error is not None
        assert refused.error.code == "overloaded"
        assert refused.types == ["error"]


def test_wyoming_and_http_share_the_cache() -> None:
    engine = FakeEngine()
    with FakeServer(engine, fake_settings(cache="memory"), wyoming=True) as server:
        body = {"input": TEXT, "response_format": "pcm", "stream": True}
        http = httpx.post(server.url + SPEECH, json=body, timeout=30)
        assert http.headers["x-cache"] == "miss"
        calls = len(engine.batches)
        reply = asyncio.run(synthesize(server.wyoming_port, TEXT))
        assert reply.pcm == http.content
        assert len(engine.batches) == calls  # a hit: nothing synthesized
        assert server.metric("voxserve_cache_requests_total", backend="memory", result="hit") == 1
        # ... and the other way round.
        other = "Cached the other way round."
        first = asyncio.run(synthesize(server.wyoming_port, other))
        calls = len(engine.batches)
        again = httpx.post(server.url + SPEECH, json={**body, "input": other}, timeout=30)
        assert again.headers["x-cache"] == "hit"
        assert again.content == first.pcm
        assert len(engine.batches) == calls


def test_interleaved_wyoming_and_http_clients_each_get_their_own_audio() -> None:
    engine = FakeEngine(seconds_per_call=0.002, batching=True)
    texts = [f"Client {n} says hello. Then client {n} says goodbye." for n in range(12)]
    with FakeServer(engine, fake_settings(lanes=2), wyoming=True) as server:
        expected = {text: http_pcm(server, text) for text in texts}

        async def run() -> list[bytes]:
            async def over_http(text: str) -> bytes:
                async with httpx.AsyncClient(timeout=30) as client:
                    body = {"input": text, "response_format": "pcm", "stream": True}
                    return (await client.post(server.url + SPEECH, json=body)).content

            async def over_wyoming(text: str, n: int) -> bytes:
                if n % 4 == 1:
                    return (await stream(server.wyoming_port, [w + " " for w in text.split()])).pcm
                return (await synthesize(server.wyoming_port, text)).pcm

            jobs = [over_http(t) if n % 2 == 0 else over_wyoming(t, n) for n, t in enumerate(texts)]
            return list(await asyncio.gather(*jobs))

        got = asyncio.run(run())
        for text, pcm in zip(texts, got, strict=True):
            assert pcm == expected[text], text


# -- transcribe -----------------------------------------------------------------------------


def pcm16(seconds: float, *, rate: int = 16_000, level: float = 0.1) -> bytes:
    return (np.full(int(seconds * rate), level * 32767)).astype("<i2").tobytes()


def test_transcribe_streams_the_transcript_window_by_window(server: FakeServer) -> None:
    reply = asyncio.run(transcribe(server.wyoming_port, pcm16(40)))
    assert reply.error is None
    assert reply.types == [
        "transcript-start", "transcript-chunk", "transcript-chunk", "transcript",
        "transcript-stop",
    ]  # fmt: skip
    assert transcript(reply) == "window 0 window 1"
    counted(server, "transcribe", "ok")


@pytest.mark.parametrize(("rate", "width", "channels"), [(22_050, 2, 1), (48_000, 4, 2)])
def test_transcribe_takes_other_rates_widths_and_channels(
    server: FakeServer, rate: int, width: int, channels: int
) -> None:
    samples = np.full((rate * 2, channels), 0.1 * 2 ** (8 * width - 1), dtype=f"<i{width}")
    reply = asyncio.run(
        transcribe(server.wyoming_port, samples.tobytes(), rate=rate, width=width,
                   channels=channels)
    )  # fmt: skip
    assert transcript(reply) == "window 0"
    assert server.transcriber is not None


def test_transcribe_refuses_a_recording_over_the_limit_and_goes_on() -> None:
    settings = fake_settings(asr_max_seconds=5)
    with FakeServer(FakeEngine(), settings, recognizer=FakeRecognizer(), wyoming=True) as server:
        reply = asyncio.run(transcribe(server.wyoming_port, pcm16(6)))
        assert reply.error is not None
        assert reply.error.code == "audio_too_long"
        assert "VOXSERVE_ASR_MAX_SECONDS" in reply.error.text
        assert transcript(asyncio.run(transcribe(server.wyoming_port, pcm16(2)))) == "window 0"


def test_transcribe_of_no_audio_is_an_empty_transcript(server: FakeServer) -> None:
    assert transcript(asyncio.run(transcribe(server.wyoming_port, b""))) == ""


def test_transcribe_with_an_unknown_model_names_it(server: FakeServer) -> None:
    reply = asyncio.run(transcribe(server.wyoming_port, pcm16(1), model="whisper-huge"))
    assert reply.error is not None
    assert "whisper-huge" in reply.error.text


# -- the listener: settings, start-up, stop, discovery -----------------------------------------


def test_settings_default_to_on_loopback_10200_without_discovery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings()
    assert (settings.wyoming, settings.wyoming_host, settings.wyoming_port) == (
        True, "127.0.0.1", 10200,
    )  # fmt: skip
    assert settings.wyoming_zeroconf is False
    monkeypatch.setenv("VOXSERVE_WYOMING_PORT", "10300")
    monkeypatch.setenv("VOXSERVE_WYOMING", "false")
    monkeypatch.setenv("VOXSERVE_WYOMING_ZEROCONF", "true")
    settings = Settings.load()
    assert (settings.wyoming, settings.wyoming_port, settings.wyoming_zeroconf) == (
        False, 10300, True,
    )  # fmt: skip


def test_a_wyoming_port_in_use_stops_start_up_naming_it() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(ConfigError) as info:
            serve(Settings(host="127.0.0.1", port=0, metrics_port=0, wyoming_port=taken))
    assert info.value.param == "VOXSERVE_WYOMING_PORT"
    assert "--wyoming-port" in info.value.message


def test_stopping_lets_a_request_in_progress_finish() -> None:
    engine = FakeEngine(seconds_per_call=0.05, batching=False)
    server = FakeServer(engine, fake_settings(), wyoming=True)
    with server:

        async def run() -> Reply:
            async with connect(server.wyoming_port) as client:
                await client.write_event(synthesize_event(sentences(6)))
                await read_until(client, "audio-chunk")
                server.server.should_exit = True  # the drain starts mid-request
                return await read_until(client, "audio-stop")

        reply = asyncio.run(run())
    assert reply.error is None
    assert len(engine.inferred()) == 6


def test_discovery_advertises_wyoming_on_the_listeners_address() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        info = Advertisement(port, sock, name="voxserve-test").service_info()
    assert info.type == SERVICE_TYPE == "_wyoming._tcp.local."
    assert info.name == "voxserve-test._wyoming._tcp.local."
    assert info.port == port
    assert info.parsed_addresses() == ["127.0.0.1"]
    assert advertised_host("192.168.1.20") == "192.168.1.20"


class RecordingZeroconf:
    """Stands in for zeroconf.asyncio.AsyncZeroconf: records instead of multicasting."""

    calls: ClassVar[list[tuple[str, object]]] = []

    async def async_register_service(self, info: object) -> None:
        self.calls.append(("register", info))

    async def async_unregister_service(self, info: object) -> None:
        self.calls.append(("unregister", info))

    async def async_close(self) -> None:
        self.calls.append(("close", None))


def test_discovery_registers_at_start_and_unregisters_at_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import zeroconf.asyncio

    monkeypatch.setattr(zeroconf.asyncio, "AsyncZeroconf", RecordingZeroconf)
    RecordingZeroconf.calls.clear()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        advertisement = Advertisement(sock.getsockname()[1], sock, name="voxserve-test")

        async def run() -> None:
            await advertisement.start()
            await advertisement.stop()

        asyncio.run(run())
    assert [call for call, _ in RecordingZeroconf.calls] == ["register", "unregister", "close"]
    assert RecordingZeroconf.calls[0][1].name == "voxserve-test._wyoming._tcp.local."  # type: ignore[attr-defined]


def test_discovery_that_fails_leaves_the_server_serving(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import zeroconf.asyncio

    def no_multicast() -> None:
        raise OSError("no multicast route")

    monkeypatch.setattr(zeroconf.asyncio, "AsyncZeroconf", no_multicast)
    settings = fake_settings(wyoming_zeroconf=True)
    with FakeServer(FakeEngine(), settings, wyoming=True) as server:
        assert asyncio.run(synthesize(server.wyoming_port, "Still served.")).samples > 0
    assert "Wyoming discovery is off" in caplog.text
    assert "no multicast route" in caplog.text


def test_an_error_event_has_text_and_code(server: FakeServer) -> None:
    reply = asyncio.run(synthesize(server.wyoming_port, "Hi.", voice="nope"))
    assert reply.error is not None
    assert Error.is_type(reply.events[-1].type)
    assert set(reply.events[-1].data) == {"text", "code"}
