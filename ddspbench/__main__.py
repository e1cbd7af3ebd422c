"""``python -m ddspbench`` is the ``ddspbench`` command."""

import sys

from ddspbench.suite.cli import main

sys.exit(main())
