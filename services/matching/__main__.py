"""python -m services.matching: run matching alone."""

from services.main import main

main(["matching"])
