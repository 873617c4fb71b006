"""`python -m cli`: the `reasoner` console script."""

import sys

from cli.main import main

sys.exit(main())
