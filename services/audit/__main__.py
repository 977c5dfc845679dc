"""python -m services.audit: run audit alone."""

from services.main import main

main(["audit"])
