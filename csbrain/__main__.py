"""``python -m csbrain ...``: the same as the ``csbrain`` command."""

import sys

from csbrain.cli import main

if __name__ == "__main__":
    sys.exit(main())
