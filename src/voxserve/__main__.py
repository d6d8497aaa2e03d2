"""``python -m voxserve``: the same as the ``voxserve`` command."""

import sys

from voxserve.cli import main

sys.exit(main())
