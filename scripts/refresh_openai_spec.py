#!/usr/bin/env python3
"""Refresh tests/openai_spec/audio.json from a copy of OpenAI's published OpenAPI document.

The conformance suite (tests/test_openai_conformance.py) checks voxserve against OpenAI's
own words, so it reads a vendored extract of the upstream document rather than anything
voxserve writes about itself. This script makes that extract:

- every operation under ``/audio/`` (speech, transcriptions, translations, voices, voice
  consents: whatever upstream lists there);
- every component those operations reference, followed transitively (schemas, responses,
  parameters, ...), and the security scheme the document applies to all operations;
- documentation-only metadata (``x-oaiMeta``: code samples, example requests) left out,
  and the upstream ``servers`` list too: voxserve's base path is the test's business.

Usage, from a clone of the ``openai/openai-openapi`` repository (its ``openapi.json`` or
``openapi.yaml``)::

    python scripts/refresh_openai_spec.py path/to/openapi.json
    python scripts/refresh_openai_spec.py path/to/openapi.json --commit SHA --date YYYY-MM-DD

``--commit`` and ``--date`` default to the last commit of the file's own git checkout,
when it has one; a copy outside a checkout needs both. The output is deterministic: the
same input gives byte-identical output.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = "openai/openai-openapi"
PREFIX = "/audio/"
OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "openai_spec" / "audio.json"
DROPPED_KEYS = frozenset({"x-oaiMeta"})


def load(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml  # only for a YAML copy; PyYAML comes with the dev extra

        document = yaml.safe_load(text)
    else:
        document = json.loads(text)
    if not isinstance(document, dict) or "paths" not in document:
        raise SystemExit(f"{path}: not an OpenAPI document (no 'paths')")
    return document


def strip(node: Any) -> Any:
    """``node`` without documentation-only keys, at any depth."""
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROPPED_KEYS}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def refs(node: Any) -> Iterator[str]:
    """Every local ``$ref`` string under ``node``."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            yield ref
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def extract(document: dict[str, Any]) -> dict[str, Any]:
    """The ``/audio/`` operations of ``document`` and everything they reference."""
    paths = {
        p: strip(item) for p, item in sorted(document["paths"].items()) if p.startswith(PREFIX)
    }
    if not paths:
        raise SystemExit(f"no paths under {PREFIX} in the document")
    components: dict[str, dict[str, Any]] = {}
    pending = list(refs(paths))
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        parts = ref.removeprefix("#/").split("/")
        if len(parts) != 3 or parts[0] != "components":
            raise SystemExit(f"unsupported reference {ref!r}: only #/components/<kind>/<name>")
        _, kind, name = parts
        try:
            target = strip(document["components"][kind][name])
        except KeyError:
            raise SystemExit(f"dangling reference {ref!r} in the upstream document") from None
        components.setdefault(kind, {})[name] = target
        pending.extend(refs(target))
    security = document.get("security", [])
    schemes = document.get("components", {}).get("securitySchemes", {})
    for requirement in security:
        for scheme in requirement:
            components.setdefault("securitySchemes", {})[scheme] = schemes[scheme]
    out: dict[str, Any] = {
        "openapi": document["openapi"],
        "info": {
            "title": f"{document['info']['title']}: the audio operations",
            "version": document["info"]["version"],
            "license": document["info"].get("license", {}),
        },
    }
    if security:
        out["security"] = security
    out["paths"] = paths
    out["components"] = {
        kind: dict(sorted(items.items())) for kind, items in sorted(components.items())
    }
    return out


def git_origin(path: Path) -> tuple[str, str] | None:
    """(commit, date) of the last commit that touched ``path``, if it is in a git checkout."""
    try:
        line = subprocess.run(
            ["git", "log", "-1", "--format=%H %cs", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    if not line:
        return None
    commit, date = line.split()
    return commit, date


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", type=Path, help="a copy of upstream openapi.json or .yaml")
    parser.add_argument("--commit", help="the upstream commit the copy comes from")
    parser.add_argument("--date", help="that commit's date, YYYY-MM-DD")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"default: {OUTPUT.name}")
    args = parser.parse_args(argv)

    commit, date = args.commit, args.date
    if commit is None or date is None:
        origin = git_origin(args.upstream.resolve())
        if origin is None:
            parser.error("the file is not in a git checkout: give --commit and --date")
        commit, date = commit or origin[0], date or origin[1]
    spec = extract(load(args.upstream))
    # The header first, so that a reader of the file sees where it came from.
    vendored = {
        "x-vendored": {
            "repository": REPO,
            "path": "openapi.yaml" if args.upstream.suffix in (".yaml", ".yml") else "openapi.json",
            "commit": commit,
            "date": date,
            "extracted": f"every path under {PREFIX} and the components they reference; "
            "x-oaiMeta and servers left out",
            "refresh": "python scripts/refresh_openai_spec.py <upstream openapi.json>",
        },
        **spec,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(vendored, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    operations = sum(len(methods.intersection(item)) for item in spec["paths"].values())
    schemas = sum(len(items) for items in spec["components"].values())
    print(f"wrote {args.output}: {operations} operations, {schemas} components", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
