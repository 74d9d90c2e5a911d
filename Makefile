# The two commands a newcomer needs (see README.md):
#   make demo   install into .venv and run the example experiments end to end
#   make test   install into .venv (with test tools) and the programs the tests run
#               (scripts/prerequisites.sh), start the services if down, run every test
#   make bench  every benchmark (about 23 minutes): a table of ratios, benchmarks/results.json
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo test lint prerequisites services bench clean

$(BIN)/dbdict: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,examples,plot]'
	touch $@

demo: $(BIN)/dbdict
	bash scripts/demo.sh $(BIN)

prerequisites:
	bash scripts/prerequisites.sh

services: prerequisites
	bash scripts/services-up.sh

lint: $(BIN)/dbdict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(BIN)/dbdict prerequisites services lint
	$(BIN)/pytest

bench: $(BIN)/dbdict prerequisites services
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
