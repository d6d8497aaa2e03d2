"""The scenarios, in the order ``reliability.run`` runs them.

Each module has ``NAME`` and ``async def run(ctx: Context) -> Result``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from reliability.harness import Context, Result
from reliability.scenarios import (
    abandoned,
    overload,
    redis_outage,
    sigterm,
    soak,
    stalled_uploads,
    worst_case,
)

Scenario = Callable[[Context], Awaitable[Result]]

#: Name -> scenario, in running order.
SCENARIOS: dict[str, Scenario] = {
    module.NAME: module.run
    for module in (
        overload,
        stalled_uploads,
        abandoned,
        soak,
        worst_case,
        redis_outage,
        sigterm,
    )
}
