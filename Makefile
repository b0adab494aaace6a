# `make demo` and `make test` set everything up on a fresh machine: a .venv with the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make test` runs the suite's files on this many workers; a file's tests stay on one worker, so
# its module fixtures (trained models) are built once. The long files are handed out first, in
# the order tests/conftest.py gives them (LONG_FILES), so no worker ends long after the other.
TEST_WORKERS ?= 2
# onnxruntime-web for `xlv-export format=web`, from the npm registry, inside the venv.
WEB := $(VENV)/share/xlvision/web
ORT_WEB := onnxruntime-web@1.30.0
WEB_STAMP := $(WEB)/.installed

.PHONY: demo test test-slow bench lint format install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,search,cluster]"
	touch $(STAMP)

$(WEB_STAMP): | $(BIN)/python
	mkdir -p $(WEB)
	npm install --prefix $(WEB) --no-audit --no-fund --ignore-scripts --loglevel=error $(ORT_WEB)
	touch $(WEB_STAMP)

install: $(STAMP) $(WEB_STAMP)

demo: $(STAMP)
	$(BIN)/xlv-pipeline

test: $(STAMP) $(WEB_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test-slow: $(STAMP)
	$(BIN)/pytest -m slow

# Every benchmark in bench/ (files starting with _ are their shared helpers), one after another.
bench: $(STAMP)
	@for script in bench/[!_]*.py; do \
		echo "== $$script"; \
		$(BIN)/python $$script || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) outputs/* .pytest_cache .ruff_cache
