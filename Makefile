# Two entry points for a fresh machine (only Python, pip and build tools needed):
#   make demo   install into .venv, build the AMCSD demo competition into demo/, grade the
#               sample submission and print the leaderboard
#   make test   install into .venv, lint, type-check scoring/, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Demo size: the first DEMO_LIMIT AMCSD entries, at most DEMO_PER_CLASS per lattice
# (about 1.5 minutes on 2 cores; the full 9,275 entries take about 6 minutes).
DEMO_LIMIT ?= 2000
DEMO_PER_CLASS ?= 100

.PHONY: demo test lint install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned: 2.13.0 resolves to the CPU build.
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	rm -rf demo/leaderboard
	$(BIN)/xrd-bravais build --out demo --limit $(DEMO_LIMIT) --per-class $(DEMO_PER_CLASS)
	$(BIN)/xrd-bravais submit demo/public/sample_submission.csv --competition demo \
		--team "sample submission (majority class)" --baseline
	$(BIN)/xrd-bravais leaderboard --competition demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy scoring competition/lattices.py

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo *.egg-info .pytest_cache .ruff_cache .mypy_cache
