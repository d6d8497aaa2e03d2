"""The reliability suite: voxserve under overload and abuse, against a real server.

Each scenario starts its own ``python -m voxserve serve`` on 127.0.0.1 (tests/live.py's
``LiveServer``, through benchmarks/common.py), hurts it in one way, checks what every
client got, and writes one JSON document. ``python -m reliability.run`` runs them all
(``make reliability``); docs/reliability.md describes each scenario and holds the table
that ``python -m reliability.report`` regenerates from the JSON.

Modules:

- ``harness``: the scenario context, checks and results, the server launcher, process
  samplers (RSS, CPU) and the metrics reader;
- ``traffic``: the requests the suite sends, how a response is read and judged, and the
  reference bodies that catch mixed audio;
- ``scenarios``: one module per scenario, each with ``async def run(ctx) -> Result``;
- ``run``: the command line; ``report``: the table in docs/reliability.md.
"""
