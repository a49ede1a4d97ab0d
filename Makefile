# `make run` and `make test` build .venv from the pinned requirements when it is missing or stale,
# then run the app or the whole suite. A repeat with nothing changed skips the install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYVERSION = import sys; print(sys.version_info[:2])

.PHONY: run test lint bench clean venv

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml Makefile
	@if [ "$$($(BIN)/python -c '$(PYVERSION)' 2>/dev/null)" != "$$($(PYTHON) -c '$(PYVERSION)')" ]; then \
		echo "creating $(VENV) with $$($(PYTHON) --version)"; \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python app.py

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
