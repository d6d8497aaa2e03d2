"""Writing output files so that a reader never sees half of one."""

from __future__ import annotations

import os
from pathlib import Path


def publish(temporary: str | Path, target: Path) -> None:
    """Give ``temporary`` (from ``tempfile.mkstemp``, mode 0600) the mode a new file would
    get under the umask, then rename it over ``target`` in one step."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    os.replace(temporary, target)
