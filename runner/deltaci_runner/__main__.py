"""`python -m deltaci_runner` is the same as the `deltaci-runner` console script."""

import sys

from deltaci_runner.cli import main

sys.exit(main())
