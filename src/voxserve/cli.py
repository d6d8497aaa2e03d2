"""The ``voxserve`` command: ``say``, ``voices``, ``transcribe``, ``cache``, ``quantize``
and ``serve``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from voxserve import cli_jobs, cli_lexicon, cli_quantize, cli_say, cli_transcribe
from voxserve.errors import InvalidParameter, VoxserveError

EPILOG = """examples:
  voxserve say 'Dr. Smith paid $3.50 for 2 tickets on 24 November 2026.' -o out.wav
  voxserve say -i chapter.txt -o chapter.mp3 --speed 1.1
  voxserve voices --json
  voxserve transcribe meeting.mp3 -f srt -o meeting.srt
  voxserve quantize voices/en_US-x-medium.onnx voices/en_US-x-medium-int8.onnx
  VOXSERVE_CACHE=redis REDIS_URL=redis://127.0.0.1:6379/0 voxserve cache warm prompts.txt -f wav
environment: every option of the service reads VOXSERVE_* variables (see docs/operations.md);
  VOXSERVE_VOICES_DIR (alias MODEL_PATH) adds a directory of Piper .onnx + .onnx.json voices."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxserve",
        description="Self-hosted speech service: neural voices and speech recognition.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    say = sub.add_parser(
        "say",
        help="speak text into a file or the sound card",
        description="Speak TEXT (or the file given with -i). The output format follows the "
        "extension of -o: .wav .flac .mp3 .opus/.ogg .aac .pcm (raw 16-bit mono). "
        "Without -o the audio plays on the sound card (needs the 'play' extra).",
    )
    say.add_argument(
        "text", nargs="?", help="the text to speak (default: standard input, when piped)"
    )
    say.add_argument("-i", "--input", type=Path, help="read the text from a file ('-' for stdin)")
    say.add_argument(
        "-o", "--output", type=Path,
        help="write audio here, format from the extension; '-': standard output (wav, or -f)",
    )  # fmt: skip
    say.add_argument(
        "-f", "--format", choices=("wav", "mp3", "opus", "flac", "aac", "pcm"),
        help="audio format, whatever the extension of -o",
    )  # fmt: skip
    say.add_argument(
        "-v", "--voice", help="voice id (see 'voxserve voices'); default: the default voice"
    )
    say.add_argument(
        "--speed", type=float, default=1.0, help="speaking rate, 0.25 to 4.0 (default 1.0)"
    )
    say.add_argument("--volume", type=float, default=1.0, help="gain, 0.0 to 4.0 (default 1.0)")
    say.add_argument("--sample-rate", type=int, help="resample the output, 8000 to 48000 Hz")
    say.add_argument("--noise-scale", type=float, help="Piper voice variation, 0 to 2")
    say.add_argument("--noise-w", type=float, help="Piper rhythm variation, 0 to 2")
    say.add_argument("--speaker", type=int, help="speaker number of a multi-speaker voice")
    say.add_argument(
        "--sentence-silence",
        type=float,
        default=0.2,
        help="seconds between sentences (default 0.2)",
    )
    say.add_argument(
        "--captions", type=Path, metavar="FILE",
        help="also write the words' times as captions (.srt or .vtt; Piper voices)",
    )  # fmt: skip
    say.add_argument(
        "--ssml", action="store_true",
        help="the text is an SSML document (docs/ssml.md), read whole",
    )  # fmt: skip
    say.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    voices = sub.add_parser("voices", help="list installed voices")
    voices.add_argument("--json", action="store_true", help="print JSON instead of a table")

    cache = sub.add_parser(
        "cache",
        help="warm, inspect or clear the shared cache",
        description="Work on the cache the settings name (VOXSERVE_CACHE=disk|redis|tiered, "
        "VOXSERVE_CACHE_URL/REDIS_URL, VOXSERVE_CACHE_DIR). The memory cache lives inside a "
        "server process and cannot be reached from here.",
    )
    cache_sub = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    warm = cache_sub.add_parser("warm", help="precompute a file of phrases, one per line")
    warm.add_argument("phrases", type=Path, help="text file, one phrase per line ('-' for stdin)")
    warm.add_argument("-v", "--voice", help="voice id (default: the default voice)")
    warm.add_argument("-f", "--format", default="mp3", help="audio format (default mp3)")
    warm.add_argument("--speed", type=float, default=1.0, help="speaking rate (default 1.0)")
    cache_sub.add_parser("stats", help="entries and size, as JSON")
    cache_sub.add_parser("clear", help="remove every entry")

    cli_quantize.add_parser(sub)
    cli_transcribe.add_parser(sub)
    cli_jobs.add_parser(sub)
    cli_lexicon.add_parser(sub)

    serve = sub.add_parser("serve", help="run the HTTP API server")
    serve.add_argument("--host", help="address to bind (VOXSERVE_HOST, default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, help="API port (VOXSERVE_PORT, else $PORT, default 5002)"
    )
    serve.add_argument(
        "--metrics-port", type=int, help="metrics port (VOXSERVE_METRICS_PORT, default 8000)"
    )
    serve.add_argument(
        "--wyoming-port",
        type=int,
        help="Wyoming (Home Assistant) port (VOXSERVE_WYOMING_PORT, default 10200; "
        "VOXSERVE_WYOMING=false turns it off)",
    )
    serve.add_argument(
        "--trusted-proxies",
        metavar="ADDRESSES",
        help="proxies whose X-Forwarded-For names the client: IPs and CIDRs, comma separated "
        "(VOXSERVE_TRUSTED_PROXIES, default none)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1; one process already runs one inference per core, "
        "see VOXSERVE_LANES in docs/operations.md)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import logging

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "say":
            return cli_say.cmd_say(args)
        if args.command == "voices":
            return cmd_voices(args)
        if args.command == "cache":
            return asyncio.run(cmd_cache(args))
        if args.command == "quantize":
            return cli_quantize.cmd_quantize(args)
        if args.command == "transcribe":
            return cli_transcribe.cmd_transcribe(args)
        if args.command == "jobs":
            return cli_jobs.cmd_jobs(args)
        if args.command == "lexicon":
            return cli_lexicon.cmd_lexicon(args)
        return cmd_serve(args)
    except VoxserveError as exc:
        print(f"voxserve: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (voxserve voices | head): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def cmd_voices(args: argparse.Namespace) -> int:
    from voxserve.engines.voices import VoiceLibrary
    from voxserve.settings import Settings

    library = VoiceLibrary.from_settings(Settings.load())
    rows = [
        {
            "id": v.id,
            "language": v.language,
            "sample_rate": v.sample_rate,
            "engine": v.engine,
            "quality": v.quality,
            "source": v.source,
        }
        for v in library.voices()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = ("id", "language", "sample_rate", "engine", "quality", "source")
    if not sys.stdout.isatty():  # for grep and cut: whole ids, one tab-separated line each
        print("\t".join(columns))
        for row in rows:
            print("\t".join(str(row[k]) for k in columns))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "language", "rate", "engine", "quality", "source")
    for row in rows:
        table.add_row(*(str(row[k]) for k in columns))
    Console().print(table)
    return 0


async def cmd_cache(args: argparse.Namespace) -> int:
    from voxserve.cache import build_cache
    from voxserve.settings import Settings

    settings = Settings.load()
    if settings.cache in ("off", "memory"):
        raise InvalidParameter(
            f"VOXSERVE_CACHE={settings.cache}: there is no shared cache to work on. Set "
            "VOXSERVE_CACHE=disk, redis or tiered (the server's memory cache fills itself).",
            param="VOXSERVE_CACHE",
        )
    cache = build_cache(settings)
    assert cache is not None
    try:
        if args.cache_command == "warm":
            await cache.stats()  # fail fast, before loading a model, if it is unreachable
        if args.cache_command == "stats":
            print(json.dumps(await cache.stats(), indent=2))
        elif args.cache_command == "clear":
            print(f"removed {await cache.clear()} entries")
        else:
            from voxserve.cache.warm import warm
            from voxserve.synthesizer import Synthesizer
            from voxserve.types import SynthesisParams

            source = sys.stdin if str(args.phrases) == "-" else args.phrases.open(encoding="utf-8")
            with source:
                phrases = [line.strip() for line in source if line.strip()]
            synth = Synthesizer.from_settings(settings)
            try:
                report = await warm(
                    synth, cache, phrases, voice=args.voice, fmt=args.format,
                    params=SynthesisParams(speed=args.speed),
                )  # fmt: skip
            finally:
                synth.close()
            print(
                f"warmed {report.phrases} phrases ({report.stored_bytes} bytes), "
                f"skipped {report.skipped}, failed to store {report.failed}"
            )
            if report.failed:
                print(
                    f"voxserve: error: the {cache.name} cache refused {report.failed} entries "
                    "(unreachable, or over VOXSERVE_CACHE_MAX_ENTRY_BYTES); see the log",
                    file=sys.stderr,
                )
                return 1
    finally:
        await cache.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from voxserve import logs
    from voxserve.server.run import serve
    from voxserve.settings import Settings, platform_port

    overrides = {
        name: value
        for name, value in (
            ("host", args.host),
            ("port", args.port if args.port is not None else platform_port(os.environ)),
            ("metrics_port", args.metrics_port),
            ("wyoming_port", args.wyoming_port),
            ("trusted_proxies", args.trusted_proxies),
        )
        if value is not None
    }
    settings = Settings.load(**overrides)
    logs.configure(settings.log_level, settings.log_format, settings.syslog)
    serve(settings, workers=args.workers)
    return 0
