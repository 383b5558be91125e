# Two commands matter (see README):  `make run`  and  `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= data
SEED   ?= 7
HOST   ?= 127.0.0.1
PORT   ?= 8000
# Environment of the main job only (tests build their own settings in temporary folders).
# The demo keys make the admin and merchandiser routes usable out of the box; a real
# deployment sets its own (unset = those routes are disabled, never open).
RUN_ENV := MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/$(DATA)/mlflow.db} \
	RECSYS_DATA_DIR=$${RECSYS_DATA_DIR:-$(CURDIR)/$(DATA)} \
	RECSYS_ADMIN_KEY=$${RECSYS_ADMIN_KEY:-local-admin-key} \
	RECSYS_MERCHANDISER_KEY=$${RECSYS_MERCHANDISER_KEY:-local-merchandiser-key}

.PHONY: run test check format lock venv sample-data train serve lint typecheck browser services mlflow-ui clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

# The venv installs the exact versions of requirements.lock (resolved from pyproject.toml's
# ranges for Python 3.11 on linux x86_64, dev tools included), then the project itself.
$(BIN)/recsys: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $@

venv: $(BIN)/recsys  ## create .venv and install the locked dependencies and the project

lock: venv  ## re-resolve requirements.lock after editing pyproject.toml (keeps other pins; LOCK_ARGS=--upgrade moves all)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --annotation-style line \
		--custom-compile-command "make lock" $(LOCK_ARGS) -o requirements.lock

run: venv  ## generate the sample world, train through MLflow, serve the API on 127.0.0.1:8000
	$(BIN)/recsys sample-data --seed $(SEED) --out $(DATA)/sample
	$(RUN_ENV) $(BIN)/recsys train --catalog $(DATA)/sample/catalog.parquet --interactions $(DATA)/sample/interactions.parquet --seed $(SEED) --promote
	$(RUN_ENV) exec $(BIN)/recsys serve --host $(HOST) --port $(PORT) --exit-with-parent

SOURCES := recsys training serving feature_store experiments tests
FAST    := not slow and not browser and not postgres and not redis

test: venv browser services  ## lint, type-check, and run the whole test suite (unit, API, PostgreSQL, Redis, browser)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# "slow" = fits a model, starts a server process or an MLflow store (tests/conftest.py marks
# those from their fixtures); the rest runs on every core (pytest-xdist).
check: venv  ## the edit loop (about a minute on 2 idle cores): lint, import layers, types, fast tests (no slow/browser/PostgreSQL/Redis)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -x -n auto -m "$(FAST)"

format: venv  ## apply ruff's formatter and import order to the tree
	$(BIN)/ruff check --select I --fix $(SOURCES)
	$(BIN)/ruff format $(SOURCES)

browser:  ## install Debian's headless Chromium for the browser tests (no download of a browser build)
	@command -v chromium >/dev/null 2>&1 || bash .ci/install-chromium.sh

services:  ## make sure PostgreSQL and Redis answer on 127.0.0.1 (starts them if installed but stopped)
	@bash .ci/services.sh

mlflow-ui: venv  ## open the MLflow UI on the local store at http://127.0.0.1:5000
	$(RUN_ENV) sh -c '$(BIN)/mlflow ui --backend-store-uri "$$MLFLOW_TRACKING_URI" --host 127.0.0.1 --port 5000'

clean:  ## remove generated data and the virtual environment
	rm -rf $(DATA) $(VENV)
