"""``python -m convsim.cli``."""

from . import main

main()
