# Two entry points for a fresh machine (only Python, pip and build tools needed):
#   make demo   install into .venv, build the AMCSD demo competition into demo/, run the
#               reference baselines on it, zip the starter kit and print the leaderboard
#   make test   install into .venv, lint, type-check scoring/, build the docs, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Demo size: the first DEMO_LIMIT AMCSD entries, at most DEMO_PER_CLASS per lattice
# (22 s on 2 cores; the full 9,275 entries take about 70 s). A large
# test share, half of it Public, so the demo's board rests on over 300 rows.
DEMO_LIMIT ?= 3000
DEMO_PER_CLASS ?= 200
DEMO_TEST_FRACTION ?= 0.4
DEMO_PUBLIC_FRACTION ?= 0.5
# Folds of the baselines' parameter search; the 1D-CNN fits its defaults once
# (a CNN search takes several fits of minutes each on a CPU); the blend then votes with
# the fitted CNN and XGBoost (no new fit). XGBoost stops when 10 %
# of the training rows, held out, stop improving for 20 rounds.
DEMO_CV ?= 3

.PHONY: demo test lint docs install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned: 2.13.0 resolves to the CPU build.
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	rm -rf demo/leaderboard demo/submissions demo/baselines demo/starter-kit.zip
	$(BIN)/xrd-bravais build --out demo --limit $(DEMO_LIMIT) --per-class $(DEMO_PER_CLASS) \
		--test-fraction $(DEMO_TEST_FRACTION) --public-fraction $(DEMO_PUBLIC_FRACTION)
	$(BIN)/xrd-bravais baselines run uniform prior majority search-match random-forest svm xgboost \
		--competition demo --cv $(DEMO_CV) --set xgboost:model__early_stopping_rounds=20 --quiet
	$(BIN)/xrd-bravais baselines run cnn1d blend --competition demo --cv 0 --quiet
	$(BIN)/xrd-bravais starter-kit --competition demo --out demo/starter-kit.zip
	$(BIN)/xrd-bravais leaderboard --competition demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy scoring xrd_bravais/contract
	$(BIN)/lint-imports

# The documentation site, strict: a broken link, a missing page or a docstring
# reference that does not resolve fails it.
docs: $(BIN)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint docs
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo site *.egg-info .pytest_cache .ruff_cache .mypy_cache
