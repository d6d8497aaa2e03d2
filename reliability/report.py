"""Rewrite the results table of docs/reliability.md from the JSON results.

``python -m reliability.report`` reads ``reliability/results/<scenario>.json`` (with
``--quick``: ``<scenario>.quick.json``) for every scenario that has one and replaces what
lies between the two markers in the doc. Nothing else in the doc changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reliability.harness import RESULTS, ROOT
from reliability.scenarios import SCENARIOS

DOC = ROOT / "docs" / "reliability.md"
BEGIN = "<!-- reliability-results:begin (python -m reliability.report) -->"
END = "<!-- reliability-results:end -->"


def load(results: Path, quick: bool) -> list[dict[str, Any]]:
    suffix = ".quick.json" if quick else ".json"
    found = []
    for name in SCENARIOS:
        path = results / f"{name}{suffix}"
        if path.exists():
            found.append(json.loads(path.read_text()))
    return found


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value).replace("|", "\\|")


def table(documents: list[dict[str, Any]]) -> str:
    """The markdown that goes between the markers."""
    if not documents:
        return "No results yet: run `make reliability`, then `python -m reliability.report`.\n"
    machine = documents[0].get("machine", {})
    kind = "quick (`--quick`) run" if documents[0].get("quick") else "full run"
    commits = sorted({d.get("commit", "unknown") for d in documents})
    lines = [
        f"From a {kind} of server commit {', '.join(commits)} on "
        f"{machine.get('date', '?')[:10]}: {machine.get('cpu_model', '?')}, "
        f"{machine.get('cpus_usable', '?')} usable cores; 1-minute load average before each "
        "scenario: "
        + ", ".join(
            f"{d['scenario']} {d.get('machine', {}).get('load_average_1_5_15', ['?'])[0]}"
            for d in documents
        )
        + ".",
        "",
        "| scenario | result | wall time |",
        "| --- | --- | --- |",
    ]
    for d in documents:
        failed = len(d["failed_checks"])
        verdict = "passed" if d["passed"] else f"**failed** ({failed} of {len(d['checks'])})"
        if d.get("error"):
            verdict = f"**error**: {_cell(d['error'])}"
        lines.append(f"| {d['scenario']} | {verdict} | {d['wall_s']:.0f} s |")
    lines += ["", "| scenario | check | measured | target | |", "| --- | --- | --- | --- | --- |"]
    for d in documents:
        for c in d["checks"]:
            mark = "ok" if c["passed"] else "**FAIL**"
            lines.append(
                f"| {d['scenario']} | {c['name']} | {_cell(c['value'])} | {_cell(c['target'])} "
                f"| {mark} |"
            )
    failures = [(d["scenario"], c) for d in documents for c in d["checks"] if not c["passed"]]
    if failures:
        lines += ["", "Failed checks:", ""]
        lines += [
            f"- {scenario} `{c['name']}`: {_cell(c['value'])}, target {c['target']}"
            + (f" ({c['detail']})" if c["detail"] else "")
            for scenario, c in failures
        ]
    return "\n".join(lines) + "\n"


def rewrite(doc: Path, body: str) -> None:
    text = doc.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc} has no results markers; add the lines\n{BEGIN}\n{END}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{body}{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.report", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="use the *.quick.json results")
    parser.add_argument("--results", type=Path, default=RESULTS, help="(%(default)s)")
    parser.add_argument("--doc", type=Path, default=DOC, help="(%(default)s)")
    args = parser.parse_args(argv)
    documents = load(args.results, args.quick)
    rewrite(args.doc, table(documents))
    print(f"{args.doc}: {len(documents)} scenarios")
    return 0


if __name__ == "__main__":
    sys.exit(main())
