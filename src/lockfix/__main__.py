"""``python -m lockfix``."""

import sys

try:
    from lockfix.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line is still loading: no traceback
    sys.exit(130)

main()
