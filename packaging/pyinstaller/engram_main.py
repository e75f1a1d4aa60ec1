"""The bundle's entry point: the same `engram` command as the installed script."""

import sys

from ui.launcher import main

if __name__ == "__main__":
    sys.exit(main())
