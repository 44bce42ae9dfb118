# rdfa-s6: the two commands of the README, and their parts.
#   make demo   set up a virtualenv (CPU torch wheel first) and run the demo
#   make test   set up the same virtualenv, lint (ruff, mypy) and run the quick test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= demo_out

.PHONY: setup demo test lint test-slow bench clean

$(BIN)/rdfa-s6: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU wheel first: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,viz,video,hf]"
	touch $(BIN)/rdfa-s6

setup: $(BIN)/rdfa-s6

demo: setup
	$(BIN)/rdfa-s6 demo --out $(DEMO_OUT)

test: lint
	$(BIN)/python -m pytest -m "not slow" -q

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

test-slow: setup
	$(BIN)/python -m pytest -m slow -q

bench: setup
	$(BIN)/python benchmarks/scan.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
