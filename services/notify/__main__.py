"""python -m services.notify: run notify alone."""

from services.main import main

main(["notify"])
