# `make run` and `make test` build .venv from the pinned requirements when it is missing or stale,
# then run the app or the whole suite. A repeat with nothing changed skips the install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYVERSION = import sys; print(sys.version_info[:2])

.PHONY: run test lint bench clean venv screenshots

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

# the suite runs on every core (pytest-xdist), at most 8 workers: each holds torch and Qt
# (~400 MB). Tests that start an X server of their own share one worker (group "x-server").
WORKERS ?= $(shell $(PYTHON) -c 'import os; print(max(1, min(os.cpu_count() or 1, 8)))')

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m bench

# docs/images/NAME-WxH.png at each size, offscreen (nothing shows on the screen): the window at
# a forward stage (z2) and at dL/dw2, after a run of 3000 steps, the compare and network
# dialogs, and dL/dz2 with a mistake injected. A shot is "NAME ARGUMENTS..." for app.py --screenshot.
SCREENSHOT_SIZES := 1366x768 1920x1080
SCREENSHOTS := "forward --step 2" "dLdw2 --step 13" "training --train 3000" \
	"compare --dialog compare" "network --dialog network" \
	"mistake --mistake sigmoid_derivative_of_activation --step 12" \
	"check --check resources/mistaken_backprop.py --step 12"

screenshots: $(STAMP)
	@for size in $(SCREENSHOT_SIZES); do \
		for shot in $(SCREENSHOTS); do \
			set -- $$shot; name=$$1; shift; \
			env -u DISPLAY -u WAYLAND_DISPLAY QT_QPA_PLATFORM=offscreen \
				$(BIN)/python app.py --screenshot docs/images/$$name-$$size.png \
				--size $$size "$$@" || exit 1; \
		done; \
	done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
