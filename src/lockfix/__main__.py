"""``python -m lockfix``."""

from lockfix._entry import main

main()
