"""``voxserve lexicon check FILE...``: read pronunciation lexicons as the server would,
name the first bad line, and show what a sample text becomes with them.
``voxserve lexicon import FILE.pls``: a W3C PLS file in voxserve's lexicon format."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lexicon = sub.add_parser(
        "lexicon",
        help="check pronunciation lexicon files",
        description="Lexicon files: 'word = alias', '/regex/ = alias', 'word = [[ipa]]', "
        "[voice-id] sections (docs/lexicon.md).",
    )
    lexicon_sub = lexicon.add_subparsers(dest="lexicon_command", required=True, metavar="ACTION")
    check = lexicon_sub.add_parser(
        "check", help="read the files; exit 2 naming the first bad line, else list the entries"
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.add_argument(
        "--text", help="also print what this text becomes with the lexicon (English rules)"
    )
    check.add_argument("--voice", default="*", help="the voice whose entries --text uses")
    pls = lexicon_sub.add_parser(
        "import",
        help="write a W3C PLS lexicon (.pls) in voxserve's format; what cannot be is listed",
        description="Read a Pronunciation Lexicon Specification file (IPA phonemes and "
        "aliases; DTDs and entities refused) and write voxserve lexicon lines. Example: "
        "voxserve lexicon import names.pls -o names.txt",
    )
    pls.add_argument("file", type=Path, metavar="FILE.pls")
    pls.add_argument(
        "-o", "--output", type=Path, help="write the lexicon here (default: standard output)"
    )


def cmd_lexicon(args: argparse.Namespace) -> int:
    if args.lexicon_command == "import":
        return _import(args)
    from voxserve.text.lexicon import load_lexicon
    from voxserve.text.spoken import plain_runs, render

    lexicon = load_lexicon(args.files)  # InvalidLexicon: main prints it and exits 2
    for entry in lexicon.entries:
        key = f"/{entry.key}/" if entry.regex else entry.key
        value = f"[[{entry.value}]]" if entry.ipa else entry.value
        section = "" if entry.voice == "*" else f" [{entry.voice}]"
        print(f"{entry.where}: {key} = {value}{section}")
    print(f"{len(lexicon.entries)} entries, digest {lexicon.digest(args.voice) or '-'}")
    if args.text:
        spoken = render(
            plain_runs(args.text),
            language="en",
            voice=args.voice,
            sentence_silence=0.0,
            max_sentence_chars=400,
            lexicon=lexicon,
        )
        sys.stdout.write("".join(f"{s.text}\n" for s in spoken.sentences))
    return 0


def _import(args: argparse.Namespace) -> int:
    """Convert, check the result as the server reads it, write; skipped lexemes on stderr."""
    from voxserve.errors import InvalidLexicon
    from voxserve.text.lexicon import parse_lexicon
    from voxserve.text.pls import MAX_PLS_BYTES, parse_pls, to_lexicon

    source = str(args.file)
    try:
        with args.file.open("rb") as handle:
            data = handle.read(MAX_PLS_BYTES + 1)
    except OSError as exc:
        raise InvalidLexicon(f"{source}: {exc.strerror or exc}.", param="file") from None
    found, skipped = parse_pls(data, source=source)
    text = to_lexicon(found, source=args.file.name)
    parse_lexicon(text, source=f"{source} (converted)")  # what the server would refuse
    for reason in skipped:
        print(f"voxserve: skipped {reason}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    print(f"{len(found)} entries, {len(skipped)} skipped", file=sys.stderr)
    return 0
