# Two commands do everything on a fresh machine: `make lab` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Put the venv first on PATH: nbgrader runs the `alembic` command it installs.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: lab test test-browser generate check demo bench clean-venv help

help:
	@echo "make lab       - install (once) and open JupyterLab on your workspace/"
	@echo "make test      - install (once) and run the whole test suite"
	@echo "make generate  - regenerate notebooks/ from solutions/ (course maintainers)"
	@echo "make check     - course consistency check (manifest, notebooks, releases)"
	@echo "make demo      - a synthetic class of 30 through release, autograde, feedback, report, export"
	@echo "make bench     - benchmarks against nbgrader, cachetools and the rest; writes bench/REPORT.md"
	@echo "make test-browser - only the JupyterLab end-to-end tests (needs Debian's chromium)"

$(STAMP): pyproject.toml constraints.txt jupyter-config/jupyter_server_config.d/course-grader.json
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,cluster]"
	# the formgrader's Autograde/feedback buttons run the course's grader (grader/classroom/formgrader_guard.py)
	mkdir -p $(VENV)/etc/jupyter/jupyter_server_config.d
	cp jupyter-config/jupyter_server_config.d/course-grader.json $(VENV)/etc/jupyter/jupyter_server_config.d/
	touch $@

lab: $(STAMP)
	$(BIN)/python -m grader lab $(LAB_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-browser: $(STAMP)
	$(BIN)/python -m pytest -m browser $(PYTEST_ARGS)

generate: $(STAMP)
	$(BIN)/python -m grader generate

check: $(STAMP)
	$(BIN)/python -m grader dev-check

demo: $(STAMP)
	$(BIN)/python -m grader demo $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
