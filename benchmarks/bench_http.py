"""HTTP speed: time to first audio when streaming, and the server's per-request cost.

Starts the real server (``tests/live.py``'s LiveServer: ``python -m voxserve serve`` on a
free 127.0.0.1 port, cache off, CPU), then measures with httpx:

a. Time to first audio of the 2,000-character text streamed as wav and as mp3 (time
   from sending the request until the first byte past the format's header arrives)
   against the time to synthesize its first sentence alone over the same API and format
   (stream=false, whole response). Ratio target <= 1.3: a long text should start
   speaking about as soon as a one-sentence text would.
b. Server overhead: the same short text as wav, stream=false, over HTTP and through an
   in-process ``Synthesizer.synthesize``; p50(HTTP) - p50(direct), target <= 10 ms.

Both parts alternate their two sides round by round. Noise is 0 so that both sides do
the same work. Run: ``.venv/bin/python benchmarks/bench_http.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BENCH_ENV,
    Budget,
    bench_settings,
    import_live_server,
    median,
    parse_args,
    print_table,
    settle,
    summary,
    timed,
    verdict,
    write_result,
)
from texts import LONG_2000, LONG_2000_SENTENCES, SHORT
from voxserve import SynthesisParams, SynthesisRequest, Synthesizer

TTFA_RATIO_TARGET = 1.3
OVERHEAD_MS_TARGET = 10.0
VOICE = "en_US-joe-medium"
ROUTE = "/v1/audio/speech"


def body(text: str, fmt: str, *, stream: bool) -> dict[str, Any]:
    return {
        "model": "tts-1",
        "input": text,
        "voice": VOICE,
        "response_format": fmt,
        "stream": stream,
        "noise_scale": 0.0,
        "noise_w": 0.0,
    }


def header_length(head: bytes, fmt: str) -> int | None:
    """Bytes of ``fmt``'s header at the start of a stream; None until ``head`` tells."""
    if fmt == "wav":
        return 44
    if fmt == "mp3":
        if len(head) < 10:
            return None
        if not head.startswith(b"ID3"):
            return 0
        size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        return 10 + size + (10 if head[5] & 0x10 else 0)  # footer flag
    return 0


def stream_once(client: httpx.Client, text: str, fmt: str) -> tuple[float, float, int]:
    """Time to the first audio byte, time to the end, and bytes received."""
    start = time.perf_counter()
    first: float | None = None
    received = bytearray()
    with client.stream("POST", ROUTE, json=body(text, fmt, stream=True)) as response:
        check(response)
        for data in response.iter_raw():
            received += data
            if first is None:
                header = header_length(bytes(received[:10]), fmt)
                if header is not None and len(received) > header:
                    first = time.perf_counter() - start
    if first is None:
        raise RuntimeError(f"the {fmt} stream of {len(received)} bytes held no audio")
    return first, time.perf_counter() - start, len(received)


def check(response: httpx.Response) -> None:
    response.raise_for_status()
    if response.headers.get("x-cache") == "hit":
        raise RuntimeError("the server answered from its cache: start it with VOXSERVE_CACHE=off")


def whole_once(client: httpx.Client, text: str, fmt: str) -> bytes:
    response = client.post(ROUTE, json=body(text, fmt, stream=False))
    check(response)
    return response.content


def measure_ttfa(client: httpx.Client, quick: bool) -> dict[str, Any]:
    text = " ".join(LONG_2000_SENTENCES[:4]) if quick else LONG_2000
    first_sentence = LONG_2000_SENTENCES[0]
    formats: dict[str, Any] = {}
    for fmt in ("wav", "mp3"):
        whole_once(client, first_sentence, fmt)  # warm-up of this format's encoder
        ttfa, total, whole, sizes = [], [], [], []
        budget = Budget(1 if quick else 5, 12 if quick else 300)
        for r in budget:
            for side in ("stream", "whole") if r % 2 == 0 else ("whole", "stream"):
                settle()
                if side == "stream":
                    first, end, size = stream_once(client, text, fmt)
                    ttfa.append(first)
                    total.append(end)
                    sizes.append(size)
                else:
                    whole.append(timed(whole_once, client, first_sentence, fmt)[0])
        ratio = median(ttfa) / median(whole)
        formats[fmt] = {
            "time_to_first_audio_s": summary(ttfa),
            "first_sentence_whole_s": summary(whole),
            "stream_total_s": summary(total),
            "stream_bytes": sizes[0],
            "ratio_ttfa_over_first_sentence": round(ratio, 4),
            "loop": budget.report(),
        }
    return {"chars": len(text), "first_sentence_chars": len(first_sentence), "formats": formats}


def measure_overhead(client: httpx.Client, synth: Synthesizer, quick: bool) -> dict[str, Any]:
    text = SHORT[0]
    request = SynthesisRequest(
        text, voice=VOICE, format="wav", params=SynthesisParams(noise_scale=0.0, noise_w=0.0)
    )
    direct_audio = synth.synthesize(request)  # warm-up of both sides
    http_audio = whole_once(client, text, "wav")
    direct, http = [], []
    budget = Budget(5 if quick else 40, 10 if quick else 180)
    for r in budget:
        for side in ("http", "direct") if r % 2 == 0 else ("direct", "http"):
            settle()
            if side == "http":
                http.append(timed(lambda: whole_once(client, text, "wav"))[0])
            else:
                direct.append(timed(lambda: synth.synthesize(request))[0])
    overhead_ms = (median(http) - median(direct)) * 1000
    return {
        "text": text,
        "same_bytes": direct_audio.data == http_audio,
        "audio_s": round(direct_audio.duration, 4),
        "direct_s": summary(direct),
        "http_s": summary(http),
        "overhead_p50_ms": round(overhead_ms, 2),
        "loop": budget.report(),
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    started = time.monotonic()
    live_server = import_live_server()
    synth = Synthesizer.from_settings(bench_settings())
    try:
        with (
            live_server(env=BENCH_ENV) as server,
            httpx.Client(base_url=server.url, timeout=300) as client,
        ):
            ttfa = measure_ttfa(client, args.quick)
            overhead = measure_overhead(client, synth, args.quick)
    finally:
        synth.close()

    targets = {"ttfa_ratio_max": TTFA_RATIO_TARGET, "overhead_p50_ms_max": OVERHEAD_MS_TARGET}
    path = write_result(
        "http",
        quick=args.quick,
        config={
            "route": ROUTE,
            "voice": VOICE,
            "noise": "noise_scale=0, noise_w=0",
            "server_env": BENCH_ENV,
            "client": f"httpx {httpx.__version__}",
        },
        results={"ttfa": ttfa, "overhead": overhead},
        targets=targets,
        out=args.out,
    )

    print_table(
        f"Time to first audio, {ttfa['chars']}-char text streamed vs its first sentence whole",
        [
            "format",
            "rounds",
            "TTFA s",
            "1st sentence s",
            "ratio",
            f"<= {TTFA_RATIO_TARGET}",
            "stream total s",
        ],
        [
            (
                fmt,
                r["loop"]["rounds"],
                r["time_to_first_audio_s"]["median"],
                r["first_sentence_whole_s"]["median"],
                r["ratio_ttfa_over_first_sentence"],
                verdict(r["ratio_ttfa_over_first_sentence"], TTFA_RATIO_TARGET),
                r["stream_total_s"]["median"],
            )
            for fmt, r in ttfa["formats"].items()
        ],
    )
    print_table(
        f"Per-request cost, {overhead['text']!r} as wav (p50 of {overhead['loop']['rounds']})",
        ["side", "p50 s", "p90 s"],
        [
            ("direct synthesize", overhead["direct_s"]["median"], overhead["direct_s"]["p90"]),
            ("HTTP round trip", overhead["http_s"]["median"], overhead["http_s"]["p90"]),
        ],
    )
    ms = overhead["overhead_p50_ms"]
    print(
        f"\nServer overhead p50(HTTP) - p50(direct): {ms:+.2f} ms "
        f"[{verdict(ms, OVERHEAD_MS_TARGET)}, target <= {OVERHEAD_MS_TARGET:g} ms]; "
        f"same bytes: {overhead['same_bytes']}"
    )
    print(f"Wrote {path} in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
