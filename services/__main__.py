"""python -m services [name ...]: all four services (or the named ones) in one process."""

import sys

from services.main import main

main(sys.argv[1:] or None)
