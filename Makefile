# The README's two commands: `make demo` runs the system, `make test` runs the suite.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-hub-stop demo-hub-start test lint bench install translations clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Compiled catalogues are build output, never committed.
translations: $(STAMP)
	for d in edge_node/translations kiosk_ui/translations; do \
		if [ -d $$d ]; then $(BIN)/pybabel -q compile -f -d $$d || exit 1; fi; \
	done

demo: $(STAMP) translations
	$(BIN)/python deploy/demo.py

# The outage story by hand, beside a running `make demo`: the hub alone stops and starts.
demo-hub-stop: $(STAMP)
	$(BIN)/python deploy/demo.py hub-stop

demo-hub-start: $(STAMP)
	$(BIN)/python deploy/demo.py hub-start

test: $(STAMP) translations
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
