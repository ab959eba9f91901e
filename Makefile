# The two commands a new user needs: `make report` and `make test`.
# Each bootstraps what it needs: a .venv with the pinned packages (requirements.lock),
# and for the tests the Debian packages of the servers they start (as root).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: report test bench lock system-deps venv clean-venv help lab sample monthly

help:
	@echo "make report   render the report on the embedded sample data (data/sample)"
	@echo "make test     run the whole test suite (installs servers' Debian packages as root)"
	@echo "make monthly  crawl this month's list, ingest new lab evidence, render the month's report"
	@echo "make sample   rebuild data/sample/: the local lab and a year of testbed crawls (root; ONLY=crawl|lab: one part)"
	@echo "make lab      open the notebooks in JupyterLab on the sample (data/sample.duckdb) or your data/observatory.duckdb"
	@echo "make bench    run the benchmarks (benchmarks/)"
	@echo "make lock     re-pin requirements.lock from the current .venv"

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml setup.py collectors/lab_ingest/_postfix_fast.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (set PYTHON=/path/to/python3.11)")'
	@echo "Installing the pinned packages of requirements.lock into $(VENV) (first time only: a few minutes)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)
	@echo "$(VENV) is ready"

system-deps:
	@scripts/install-system-deps

report: $(STAMP)
	$(BIN)/mtasts report $(if $(MONTH),--month $(MONTH)) $(if $(DB),--db $(DB))

monthly: $(STAMP)
	$(BIN)/mtasts monthly --list $(or $(LIST),tranco:latest) $(if $(TOP),--top $(TOP)) $(foreach e,$(EVIDENCE),--evidence $(e)) $(if $(CRAWL_ARGS),--crawl-args "$(CRAWL_ARGS)")

sample: system-deps $(STAMP)
	$(BIN)/mtasts lab sample $(if $(ONLY),--only $(ONLY))

# The sample as a real DuckDB file (git-ignored) the notebooks open by default; the command
# rebuilds it only when data/sample/ or the schema changed. Root needs --allow-root. jupysql's
# usage statistics and version check (ploomber) are off for every kernel started from here.
lab: $(STAMP)
	$(BIN)/mtasts db sample
	PLOOMBER_STATS_ENABLED=false PLOOMBER_VERSION_CHECK_DISABLED=true \
	  $(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# system-deps first: the venv's install compiles the Postfix reader with the C compiler it brings.
test: system-deps $(STAMP)
	$(BIN)/python -m pytest

PEERS := .venv-peers

$(PEERS)/.installed: benchmarks/peers-requirements.lock
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/peers-requirements.lock
	touch $@

bench: system-deps $(STAMP) $(PEERS)/.installed
	CHECKDMARC_PYTHON=$(abspath $(PEERS))/bin/python $(BIN)/python -m benchmarks $(BENCH)

lock:
	$(BIN)/python -m pip freeze --exclude-editable | { \
	  echo "# Exact pins of every package the project installs (direct and transitive)."; \
	  echo "# Regenerate with 'make lock' after changing pyproject.toml; environment.yml must match (tests/test_lockfile.py)."; \
	  cat; } > requirements.lock

clean-venv:
	rm -rf $(VENV)
