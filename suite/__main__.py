"""``python -m ddspbench`` runs the ddspbench CLI."""

from __future__ import annotations

import sys

from ddspbench.suite.cli import main

if __name__ == "__main__":
    sys.exit(main())
