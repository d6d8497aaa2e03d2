"""Run the reliability scenarios: ``python -m reliability.run [--only a,b] [--quick]``.

Writes ``<scenario>.json`` per scenario and ``summary.json`` to ``--out``
(``*.quick.json`` with ``--quick``, so a smoke run never replaces a full one), prints a
table of every check, and exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from reliability.harness import RESULTS, SCENARIO_LIMIT_S, Context, Result, commit, machine_info
from reliability.scenarios import SCENARIOS, Scenario

log = logging.getLogger("reliability")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reliability.run",
        description="voxserve under overload and abuse, against a real server on 127.0.0.1.",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated scenarios to run (default all: {','.join(SCENARIOS)})",
    )
    parser.add_argument("--quick", action="store_true", help="short smoke sizes (few clients)")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="directory of the JSON results (%(default)s)"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="VOXSERVE_X=VALUE",
        help="a setting for every server the suite starts (repeatable)",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    args.names = names
    bad = [item for item in args.server_env if "=" not in item]
    if bad:
        parser.error(f"--server-env takes NAME=VALUE; got {', '.join(bad)}")
    args.env = dict(item.split("=", 1) for item in args.server_env)
    return args


async def run_one(name: str, scenario: Scenario, ctx: Context) -> Result:
    """Run one scenario within SCENARIO_LIMIT_S; a crash or overrun is a failed result."""
    started = time.monotonic()
    log.info("%s: starting", name)
    try:
        result = await asyncio.wait_for(scenario(ctx), SCENARIO_LIMIT_S)
    except TimeoutError:
        result = Result(name, ctx)
        result.error = f"ran past {SCENARIO_LIMIT_S:g} s and was stopped"
    except Exception as exc:
        log.debug("%s crashed", name, exc_info=True)
        result = Result(name, ctx)
        result.error = f"{type(exc).__name__}: {exc}"
        result.notes.append(traceback.format_exc()[-2000:])
    result.finish()
    result.wall_s = round(time.monotonic() - started, 2)
    log.info("%s: %s in %.1f s", name, "passed" if result.passed else "FAILED", result.wall_s)
    return result


def write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def print_results(results: list[Result]) -> None:
    """Every check of every scenario as one aligned table on stdout."""
    rows = [("scenario", "check", "value", "target", "ok")]
    for result in results:
        if result.error is not None:
            rows.append((result.name, "(ran)", result.error[:60], "no error", "FAIL"))
        for check in result.checks:
            value = "-" if check.value is None else str(check.value)
            rows.append(
                (
                    result.name,
                    check.name,
                    value[:40],
                    check.target,
                    "ok" if check.passed else "FAIL",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * width for width in widths))
    print()
    for result in results:
        verdict = "passed" if result.passed else "FAILED"
        print(f"{result.name:16} {verdict:7} {result.wall_s:6.1f} s")


async def main_async(args: argparse.Namespace) -> list[Result]:
    ctx = Context(quick=args.quick, out=args.out, server_env=args.env)
    suffix = ".quick.json" if args.quick else ".json"
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    results = []
    for name in args.names:
        result = await run_one(name, SCENARIOS[name], ctx)
        results.append(result)
        document = result.document() | {"machine": machine_info(), "commit": commit()}
        write(args.out / f"{name}{suffix}", document)
    summary = {
        "quick": args.quick,
        "started": started,
        "machine": machine_info(),
        "commit": commit(),
        "server_env": ctx.env(),
        "passed": all(r.passed for r in results),
        "scenarios": [
            {k: r.document()[k] for k in ("scenario", "passed", "wall_s", "failed_checks", "error")}
            for r in results
        ],
    }
    write(args.out / f"summary{suffix}", summary)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    results = asyncio.run(main_async(args))
    print_results(results)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
