"""``voxserve jobs``: long-form jobs on a running server (docs/jobs.md)::

    voxserve jobs submit book.md --voice en_US-joe-medium -f mp3 --wait -o book.mp3
    voxserve jobs status job_...
    voxserve jobs fetch job_... -o book.mp3
    voxserve jobs cancel job_...

The server is ``--url`` (VOXSERVE_URL, default http://127.0.0.1:5002); the key is
``VOXSERVE_API_KEY`` when the server has keys.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a jobs command runs: every voxserve command loads this
    import httpx

DEFAULT_URL = "http://127.0.0.1:5002"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jobs = sub.add_parser("jobs", help="long-form jobs on a running server")
    jobs.add_argument("--url", default=None, help=f"the server (VOXSERVE_URL, {DEFAULT_URL})")
    actions = jobs.add_subparsers(dest="action", required=True)
    submit = actions.add_parser("submit", help="speak a text file (plain text or Markdown)")
    submit.add_argument("file", type=Path)
    submit.add_argument("--voice", default=None, help="voice id or OpenAI voice name")
    submit.add_argument("-f", "--format", default="mp3", help="mp3, wav, opus, flac, aac, pcm")
    submit.add_argument("--speed", type=float, default=None)
    submit.add_argument(
        "--timestamps", choices=("srt", "vtt", "words"),
        help="captions (or the words as JSON) beside the audio; fetch saves them beside it",
    )  # fmt: skip
    submit.add_argument(
        "--chapters", action="store_true",
        help="a chapter at each Markdown heading (in mp3 and opus files, and the job's JSON)",
    )  # fmt: skip
    submit.add_argument("--wait", action="store_true", help="show progress until it is done")
    submit.add_argument("-o", "--output", type=Path, help="with --wait: save the result here")
    for name, text in (("status", "a job's state"), ("cancel", "cancel a job")):
        action = actions.add_parser(name, help=text)
        action.add_argument("job_id")
    fetch = actions.add_parser("fetch", help="download a finished job's result")
    fetch.add_argument("job_id")
    fetch.add_argument("-o", "--output", type=Path, help="default: the job's file name")


def cmd_jobs(args: argparse.Namespace) -> int:
    import httpx

    url = (args.url or os.environ.get("VOXSERVE_URL") or DEFAULT_URL).rstrip("/")
    key = os.environ.get("VOXSERVE_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        if args.action == "submit":
            return _submit(client, args)
        if args.action == "status":
            print(json.dumps(_check(client.get(f"/v1/audio/jobs/{args.job_id}")), indent=2))
            return 0
        if args.action == "cancel":
            job = _check(client.delete(f"/v1/audio/jobs/{args.job_id}"))
            print(f"{job['id']}: {job['status']}")
            return 0
        job = _check(client.get(f"/v1/audio/jobs/{args.job_id}"))
        return _fetch(job, args.output)


def _submit(client: httpx.Client, args: argparse.Namespace) -> int:
    fields = {"response_format": args.format}
    if args.voice:
        fields["voice"] = args.voice
    if args.speed is not None:
        fields["speed"] = str(args.speed)
    if args.timestamps:
        fields["timestamps"] = args.timestamps
    if args.chapters:
        fields["chapters"] = "true"
    kind = "text/markdown" if args.file.suffix.lower() in (".md", ".markdown") else "text/plain"
    with args.file.open("rb") as text:
        job = _check(
            client.post("/v1/audio/jobs", data=fields, files={"file": (args.file.name, text, kind)})
        )
    print(job["id"], file=sys.stderr if args.wait else sys.stdout)
    if not args.wait:
        return 0
    job = _follow(client, job)
    if job["status"] != "succeeded":
        print(f"{job['id']}: {job['status']} {job.get('error') or ''}", file=sys.stderr)
        return 1
    return _fetch(job, args.output)


def _follow(client: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    """The job's server-sent events, shown as a progress bar, until it ends."""
    import httpx
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(job["id"], total=job["progress"]["characters_total"] or 1)
        path = f"/v1/audio/jobs/{job['id']}/events"
        with client.stream("GET", path, timeout=httpx.Timeout(60, read=None)) as events:
            for line in events.iter_lines():
                if line.startswith("data: "):
                    job = json.loads(line.removeprefix("data: "))
                    bar.update(task, completed=job["progress"]["characters"])
    return job


def _fetch(job: dict[str, Any], output: Path | None) -> int:
    import httpx

    if job["status"] != "succeeded" or not job["result"]:
        print(f"{job['id']} is {job['status']}: no result yet.", file=sys.stderr)
        return 1
    target = output or Path(job["result"]["filename"])
    with httpx.stream("GET", job["result"]["url"], timeout=60) as answer:
        answer.raise_for_status()
        with target.open("wb") as out:
            for piece in answer.iter_bytes():
                out.write(piece)
    print(f"{target} ({job['result']['duration_seconds']:.1f} s)", file=sys.stderr)
    captions = job["result"].get("timestamps")
    if captions:  # beside the audio: chapter.mp3 -> chapter.vtt
        suffix = captions["filename"].removeprefix(job["id"])
        beside = target.with_name(target.stem + suffix)
        answer = httpx.get(captions["url"], timeout=60)
        answer.raise_for_status()
        beside.write_bytes(answer.content)
        print(beside, file=sys.stderr)
    return 0


def _check(answer: httpx.Response) -> dict[str, Any]:
    if answer.is_error:
        try:
            message = answer.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = answer.text
        raise SystemExit(f"error {answer.status_code}: {message}")
    data: dict[str, Any] = answer.json()
    return data
