"""``voxserve lexicon check FILE...``: read pronunciation lexicons as the server would,
name the first bad line, and show what a sample text becomes with them."""

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


def cmd_lexicon(args: argparse.Namespace) -> int:
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
