"""How many CPU cores this process may use: its affinity, capped by a cgroup's limit."""

from __future__ import annotations

import os
from pathlib import Path


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU limit
    (a container's ``--cpus``, a Kubernetes CPU limit), which the affinity does not show."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    try:
        limit = cgroup_cpu_limit(Path("/sys/fs/cgroup/cpu.max").read_text())
    except OSError:
        limit = None
    return min(cores, limit) if limit else cores


def cgroup_cpu_limit(cpu_max: str) -> int | None:
    """Whole cores allowed by a cgroup v2 ``cpu.max`` ("QUOTA PERIOD" or "max PERIOD"),
    rounded up; None without a limit or for text that is not in that form."""
    fields = cpu_max.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return -(-quota // period)
