# Liveblog: `make run` serves the embedded default; `make test` runs every test.
# Both install what is missing first (a .venv/ here, pinned requirements, Debian packages).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test bench lint system-test-deps clean

$(VENV)/.runtime: requirements.txt
	@scripts/ensure-venv $(PYTHON) $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: $(VENV)/.runtime
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py liveblog_demo --url http://$(HOST):$(PORT)
	exec $(VENV)/bin/daphne -b $(HOST) -p $(PORT) project.asgi:application

system-test-deps:
	@scripts/ensure-debian-packages chromium redis-server

test: $(VENV)/.dev system-test-deps
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev
	$(PY) -m bench $(BENCH_ARGS)

lint: $(VENV)/.dev
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) var
