"""python -m services.intake: run intake alone."""

from services.main import main

main(["intake"])
