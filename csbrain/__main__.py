import sys

from csbrain.cli import main

sys.exit(main())
