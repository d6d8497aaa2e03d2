"""``voxserve transcribe``: the speech in an audio file, as text or subtitles.

Runs in this process on every core, with the same models, decoding, limits and output
formats as ``POST /v1/audio/transcriptions``::

    voxserve transcribe meeting.mp3 -f srt -o meeting.srt
    voxserve say "Hello there." -o - | voxserve transcribe -
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from voxserve.errors import InvalidParameter
from voxserve.files import publish

#: Output file extensions and the format each implies.
EXTENSIONS = {".txt": "text", ".srt": "srt", ".vtt": "vtt", ".json": "json"}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    transcribe = sub.add_parser(
        "transcribe",
        help="write down the speech in an audio file",
        description="Transcribe FILE (wav, mp3, ogg/opus, flac, m4a/aac, webm; '-' reads "
        "standard input) with the bundled Whisper model, or translate it to English with a "
        "multilingual one. Prints the text unless -o is given.",
    )
    transcribe.add_argument("file", type=Path, help="the audio file ('-' for standard input)")
    transcribe.add_argument(
        "-f", "--format", choices=("text", "json", "verbose_json", "srt", "vtt"),
        help="output format (default: from the extension of -o, else text)",
    )  # fmt: skip
    transcribe.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    transcribe.add_argument(
        "-m", "--model", help="model id (default: VOXSERVE_ASR_MODEL, else whisper-tiny.en)"
    )
    transcribe.add_argument("-l", "--language", help="ISO-639-1 code of the speech, e.g. en")
    transcribe.add_argument("--prompt", help="words or style to expect (names, spelling)")
    transcribe.add_argument(
        "--translate", action="store_true", help="translate to English (multilingual models)"
    )
    transcribe.add_argument(
        "--words", action="store_true", help="word timestamps (in verbose_json)"
    )


def cmd_transcribe(args: argparse.Namespace) -> int:
    fmt = args.format or _format_from(args.output)
    data = _read(args.file)
    text = asyncio.run(_transcribe(args, data, fmt))
    if args.output is None:
        sys.stdout.write(text)
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=args.output.parent, prefix=f".{args.output.name}.", delete=False,
        encoding="utf-8",
    ) as out:  # fmt: skip
        out.write(text)
    publish(out.name, args.output)
    return 0


async def _transcribe(args: argparse.Namespace, data: bytes, fmt: str) -> str:
    from voxserve.asr import AsrConfig, Transcriber, WhisperRecognizer, discover
    from voxserve.asr.captions import render
    from voxserve.asr.whisper import Task
    from voxserve.lanes import Lanes
    from voxserve.settings import Settings

    settings = Settings.load()
    cache_dir = settings.resolved_model_cache_dir()
    models = discover(args.model or settings.asr_model, cache_dir)
    threads = settings.resolved_threads()
    config = AsrConfig(
        max_seconds=settings.asr_max_seconds,
        vad=settings.asr_vad,
        beam_size=settings.asr_beam_size,
        cache_dir=cache_dir,
    )
    listener = Transcriber(
        models, Lanes(1), config=config, loader=lambda m: WhisperRecognizer(m, threads=threads)
    )
    try:
        recognizer = await listener.load(listener.model(args.model))
        audio = await listener.decode(data)
        task: Task = "translate" if args.translate else "transcribe"
        options = listener.options(
            recognizer, audio, task=task, language=args.language, prompt=args.prompt,
            words=args.words,
        )  # fmt: skip
        result = await listener.transcribe(recognizer, audio, options)
    finally:
        listener.close()
    granularities = ("segment", "word") if args.words else ("segment",)
    return render(result, fmt, task=task, granularities=granularities)


def _format_from(output: Path | None) -> str:
    if output is None:
        return "text"
    fmt = EXTENSIONS.get(output.suffix.lower())
    if fmt is None:
        raise InvalidParameter(
            f"Cannot tell the format from {output.name!r}: use one of "
            f"{', '.join(EXTENSIONS)}, or pass -f.",
            param="output",
        )
    return fmt


def _read(path: Path) -> bytes:
    if str(path) == "-":
        if sys.stdin.isatty():
            raise InvalidParameter(
                "No audio on standard input: pipe a file in, or give its path.", param="file"
            )
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidParameter(f"Cannot read {path}: {exc.strerror}.", param="file") from None
