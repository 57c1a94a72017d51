# 投诉处理管理平台 — `make run` serves the portal, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080
HOST ?= 127.0.0.1
export FLASK_APP := app

PO_FILES := $(wildcard translations/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)

.PHONY: install install-dev system-packages system-packages-test run serve scheduler test test-fast lint format translations-extract bench clean

## install: what running the portal needs: runtime system packages (when root: CJK fonts, HarfBuzz, Pango,
## PostgreSQL client), virtualenv, requirements.txt, compiled translations (idempotent). No test tools.
install: system-packages $(VENV)/.installed $(MO_FILES)

## install-dev: install plus the test tools: requirements-dev.txt and Chromium (for Playwright)
install-dev: install system-packages-test $(VENV)/.installed-dev

system-packages:
	@scripts/ensure-system-packages.sh runtime

system-packages-test:
	@scripts/ensure-system-packages.sh test

$(VENV)/.installed: requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po $(VENV)/.installed
	$(BIN)/pybabel compile --use-fuzzy -d translations -l $* >/dev/null

## run: migrate, load demo data into an empty database, serve on http://127.0.0.1:$(PORT) with the scheduler
run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask init
	DEMO_MODE=$${DEMO_MODE:-1} $(BIN)/flask demo load
	PORT=$(PORT) HOST=$(HOST) $(BIN)/python run.py

## serve: production: gunicorn workers (no scheduler) plus one scheduler process
serve: install
	$(BIN)/flask db upgrade
	$(BIN)/flask init
	SCHEDULER_ENABLED=0 $(BIN)/gunicorn -c gunicorn.conf.py "app:create_app()" & \
	  GUNICORN=$$!; trap "kill $$GUNICORN" EXIT; \
	  $(BIN)/flask jobs serve

## scheduler: only the scheduler process (for multi-process deployments)
scheduler: install
	$(BIN)/flask jobs serve

## test: the whole suite (PostgreSQL too when TEST_DATABASE_URL is set), over $(TEST_WORKERS) xdist workers
## (each with its own SQLite file and PostgreSQL database); the 15 slowest tests are listed at the end
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=15

# The suite starts the CLI and servers as subprocesses: let them reuse the bytecode of the first.
test test-fast: export PYTHONDONTWRITEBYTECODE :=

test: install-dev
	$(BIN)/ruff check app tests bench config.py run.py
	$(BIN)/lint-imports
	$(PYTEST)

test-fast: install-dev
	$(PYTEST) -m "not browser and not slow"

## lint: ruff (style and complexity) and import-linter (the layers and no cycles in pyproject.toml)
lint: install-dev
	$(BIN)/ruff check app tests bench config.py run.py
	$(BIN)/ruff format --check app tests bench config.py run.py
	$(BIN)/lint-imports

format: install-dev
	$(BIN)/ruff format app tests bench config.py run.py

translations-extract: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o translations/messages.pot .
	$(BIN)/pybabel update -N -i translations/messages.pot -d translations

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance/*.db .pytest_cache
