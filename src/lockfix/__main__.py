"""``python -m lockfix``."""

from lockfix.cli._entry import main

main()
