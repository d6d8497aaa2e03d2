"""``voxserve say``: text from an argument, a file or a pipe, to a file, a pipe or the sound
card.

A long text goes through the pipeline block by block (:func:`read_blocks`), so memory
stays flat however long the book; a progress bar on a terminal follows the blocks. The
audio goes to a hidden ``.NAME.*.part`` file beside the output, renamed to the output
only when everything succeeded: an interrupted run leaves no half-written file.
``--captions out.vtt`` (or ``.srt``) writes the words' times beside it (docs/captions.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from voxserve.errors import EmptyText, InvalidParameter, NoOutputDevice
from voxserve.files import publish
from voxserve.text.split import sentence_ends
from voxserve.types import FloatArray, WordTiming

if TYPE_CHECKING:
    from voxserve.audio import AudioFormat
    from voxserve.synthesizer import Synthesizer
    from voxserve.types import SynthesisParams

#: Characters handed to the pipeline at a time when reading a long file.
BLOCK_CHARS = 2000

_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def read_blocks(stream: IO[str], size: int = BLOCK_CHARS) -> Iterator[str]:
    """Blocks of at least ``size`` characters (but the last), read lazily, each ending
    where a sentence does, so the pause between blocks is the one between sentences.

    A block ends at the first sentence end (by voxserve.text's rules) or blank line past
    ``size`` characters; text with neither for ``4 * size`` characters is cut at its last
    space there. Lines do not matter: a book on one line also goes block by block.
    """
    pending = ""
    while chunk := stream.read(size):
        pending += chunk
        while (cut := _block_end(pending, size)) is not None:
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        yield pending


def _block_end(text: str, size: int) -> int | None:
    """Where the block at the start of ``text`` ends; None until more text is read."""
    if len(text) < size:
        return None
    # Whether a period ends a sentence depends on the characters after it.
    settled = len(text) - 16
    ends = [
        end
        for end in (next(sentence_ends(text, size), None), _blank_line_end(text, size))
        if end is not None and end <= settled
    ]
    if ends:
        cut = min(ends)
        while cut < len(text) and text[cut].isspace():
            cut += 1  # the spaces after a sentence stay with it
        return cut
    if len(text) < 4 * size:
        return None
    space = max(text.rfind(" ", size, 4 * size), text.rfind("\n", size, 4 * size))
    return space + 1 if space >= 0 else 4 * size


def _blank_line_end(text: str, start: int) -> int | None:
    match = _BLANK_LINE.search(text, start)
    return match.end() if match else None


def cmd_say(args: argparse.Namespace) -> int:
    from voxserve.audio import StreamEncoder, seal_wav
    from voxserve.captions import render
    from voxserve.synthesizer import Synthesizer
    from voxserve.types import SynthesisRequest

    if args.text is not None and args.input is not None:
        raise InvalidParameter(
            "Give the text as an argument or with -i FILE, not both.", param="text"
        )
    if args.text is None and args.input is None:
        if sys.stdin.isatty():
            raise EmptyText(
                "No text to speak: give it as an argument, with -i FILE, or on standard "
                'input (echo "Hello." | voxserve say -o hello.wav).',
                param="text",
            )
        args.input = Path("-")  # text piped in: the Unix habit
    to_stdout = args.output is not None and str(args.output) == "-"
    fmt = _output_format(args, to_stdout)
    captions = _captions_format(args.captions)
    timed: list[tuple[WordTiming, ...]] = []
    """Each sentence's words, timed from the start of the whole audio."""
    marks: list[tuple[str, float]] = []
    """SSML marks: (name, seconds from the start of the whole audio)."""
    params = synth_params(args)
    synth = Synthesizer.from_settings()
    try:
        # Validate voice, format and parameters before any file is created.
        probe = synth.plan(
            SynthesisRequest(
                "a", voice=args.voice, format=fmt.name if fmt else "wav", params=params
            )
        )
        rate = probe.output_rate

        def chunks(blocks: Iterator[str], advance: Callable[[int], None]) -> Iterator[FloatArray]:
            return _speak(
                synth, args, rate, blocks, advance,
                timed=timed if captions else None, marks=marks,
            )  # fmt: skip

        with _text_source(args) as (blocks, total), _progress(total, args.quiet) as advance:
            if fmt is None:
                _play(chunks(blocks, advance), rate)
            elif to_stdout:  # written as it is made; a WAV header says "length unknown"
                encoder = StreamEncoder(fmt, rate)
                for samples in chunks(blocks, advance):
                    _write_out(encoder.feed(samples))
                _write_out(encoder.finish())
            else:
                encoder = StreamEncoder(fmt, rate)
                with _atomic_output(args.output) as out:
                    for samples in chunks(blocks, advance):
                        out.write(encoder.feed(samples))
                    out.write(encoder.finish())
                    if fmt.name == "wav":
                        seal_wav(out)
        if captions:
            with _atomic_output(args.captions) as out:
                out.write(render(captions, timed, marks).encode())
    finally:
        synth.close()
    return 0


def _speak(
    synth: Synthesizer,
    args: argparse.Namespace,
    rate: int,
    blocks: Iterator[str],
    advance: Callable[[int], None],
    *,
    timed: list[tuple[WordTiming, ...]] | None,
    marks: list[tuple[str, float]],
) -> Iterator[FloatArray]:
    """Audio of every block in turn, at ``rate`` (an SSML voice of another rate is
    resampled); a block with nothing speakable is skipped. ``timed``: where each
    sentence's words go, timed from the start of the whole audio (and ``marks`` the SSML
    marks' times)."""
    from voxserve.audio import silence
    from voxserve.captions import mark_time
    from voxserve.types import SynthesisRequest
    from voxserve.words import shift

    params = dataclasses.replace(synth_params(args), sample_rate=rate)
    spoken = False
    elapsed = 0  # samples yielded so far
    if args.ssml:  # a document is parsed whole: the blocks join back into it losslessly
        blocks = iter(["".join(blocks)])
    for block in blocks:
        request = SynthesisRequest(block, voice=args.voice, params=params, ssml=args.ssml)
        try:
            plan = synth.plan(request, max_chars=len(block))
            if timed is not None:
                plan = dataclasses.replace(plan, words="chunks")
            start = elapsed
            for i, chunk in enumerate(synth.stream_plan(plan)):
                if spoken and i == 0 and params.sentence_silence:
                    pause = silence(params.sentence_silence, rate)
                    elapsed += len(pause)
                    start += len(pause)
                    yield pause
                spoken = True
                words = shift(chunk.words, start / rate)
                if timed is not None and chunk.words:
                    timed.append(words)
                for mark in plan.marks if timed is not None else ():
                    if mark.sentence == chunk.index:
                        sentence = plan.sentences[chunk.index]
                        marks.append((mark.name, mark_time(sentence, mark, words, elapsed / rate)))
                elapsed += len(chunk.samples)
                yield chunk.samples
            ending = [m for m in plan.marks if m.sentence >= len(plan.sentences)]
            marks.extend((m.name, elapsed / rate) for m in ending if timed is not None)
        except EmptyText:
            pass
        advance(len(block.encode()))
    if not spoken:
        raise EmptyText()


def synth_params(args: argparse.Namespace) -> SynthesisParams:
    """The synthesis parameters ``voxserve say`` was given."""
    from voxserve.types import SynthesisParams

    return SynthesisParams(
        speed=args.speed,
        volume=args.volume,
        sample_rate=args.sample_rate,
        noise_scale=args.noise_scale,
        noise_w=args.noise_w,
        speaker=args.speaker,
        sentence_silence=args.sentence_silence,
    )


def _captions_format(path: Path | None) -> str:
    """``srt`` or ``vtt`` from the extension of ``--captions``; ``""`` without it."""
    if path is None:
        return ""
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("srt", "vtt"):
        raise InvalidParameter(
            f"--captions {path}: name a .srt or .vtt file (the extension picks the format).",
            param="captions",
        )
    return kind


def _output_format(args: argparse.Namespace, to_stdout: bool) -> AudioFormat | None:
    """The format of the audio written: -f, else the extension of -o (wav on standard
    output); None to play it."""
    from voxserve.audio import format_from_path, get_format

    if to_stdout and sys.stdout.isatty():
        raise InvalidParameter(
            "Standard output is a terminal: pipe the audio on (| voxserve transcribe -), "
            "or write a file with -o NAME.wav.",
            param="output",
        )
    if args.format:
        return get_format(args.format)
    if to_stdout:
        return get_format("wav")
    return format_from_path(args.output) if args.output else None


def _write_out(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


@contextmanager
def _text_source(args: argparse.Namespace) -> Iterator[tuple[Iterator[str], int]]:
    """Blocks of the input text and its size in bytes (0: unknown, from a pipe)."""
    if args.input is None:
        yield iter([args.text]), len(args.text.encode())
        return
    if str(args.input) == "-":
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        yield read_blocks(stdin), 0
        return
    try:
        handle = args.input.open(encoding="utf-8", errors="replace", newline=None)
    except OSError as exc:
        raise InvalidParameter(f"Cannot read {args.input}: {exc.strerror}.", param="input") from exc
    with handle:
        yield read_blocks(handle), args.input.stat().st_size


@contextmanager
def _progress(total: int, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar over ``total`` bytes of text on stderr, when it is worth showing."""
    if quiet or total < 2 * BLOCK_CHARS or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("speaking", total=total)
        yield lambda n: progress.advance(task, n)


def _play(chunks: Iterator[FloatArray], sample_rate: int) -> None:
    """Play chunks on the default output device as they arrive."""
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        raise NoOutputDevice(
            "Cannot play audio: the sounddevice package or PortAudio is missing "
            "(pip install 'voxserve[play]'). Use -o FILE to write a file instead."
        ) from exc
    try:
        sounddevice.query_devices(kind="output")
        with sounddevice.OutputStream(
            samplerate=sample_rate, channels=1, dtype="float32"
        ) as stream:
            for samples in chunks:
                stream.write(samples.reshape(-1, 1))
    except sounddevice.PortAudioError as exc:
        raise NoOutputDevice(
            f"No audio output device is available ({exc}). Use -o FILE to write a file instead."
        ) from exc


@contextmanager
def _atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """Write to a temporary file beside ``path``; rename only when everything succeeded."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise InvalidParameter(f"Cannot write {path}: {exc.strerror}.", param="output") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
