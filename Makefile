# Liveblog: `make run` serves the embedded default; `make test` runs every test.
# Both install what is missing first (a .venv/ here, pinned requirements, Debian packages).

PYTHON ?= python3
VENV := .venv
AUDIT_VENV := var/audit-venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Connections waiting to be accepted: Twisted's default (50) overflows when a thousand phones
# reconnect at once after a deploy or a network blip (the kernel then retries them after 1 s,
# 3 s, 7 s…). The kernel caps it at net.core.somaxconn.
BACKLOG ?= 1024
# HOST as a URL host: an IPv6 address in brackets.
URL_HOST = $(if $(findstring :,$(HOST)),[$(HOST)],$(HOST))
PYTEST_ARGS ?=

.PHONY: run run-stack test fuzz bench lighthouse lint audit system-test-deps messages compiled-messages clean

$(VENV)/.runtime: requirements.txt
	@scripts/ensure-venv $(PYTHON) $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# The JavaScript dev tools (ESLint; Lighthouse for e2e/test_lighthouse.py), exactly as
# package-lock.json pins them. Only lint and tests need them: the browser code runs as it is,
# with no build step.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: ESLint and Lighthouse need Node.js 20.19+ and npm"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The Socket.IO reference server of `make bench` (bench/socketio, bench/README.md), exactly as its
# own package-lock.json pins it; tests/test_bench_socketio.py starts it too.
bench/socketio/node_modules/.installed: bench/socketio/package.json bench/socketio/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: the Socket.IO reference needs Node.js 20 and npm"; exit 1; }
	cd bench/socketio && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The translations (locale/, README "In your language"). The .po catalogs are committed; the .mo
# files Django reads are built from them, never committed. `messages` brings the catalogs up to
# date with the code first (a new string appears untranslated, and tests/test_i18n.py fails until
# it is translated); `make run` only compiles. msgfmt and xgettext are GNU gettext's.
messages: $(VENV)/.dev
	@scripts/ensure-debian-packages gettext
	$(PY) manage.py liveblog_messages

compiled-messages: $(VENV)/.runtime
	@scripts/ensure-debian-packages gettext
	$(PY) manage.py liveblog_messages --compile-only

# Plain http on HOST:PORT: no redirect to https, no Secure-only cookies (project/settings.py).
run: export LIVEBLOG_PLAIN_HTTP ?= 1
run: $(VENV)/.runtime compiled-messages
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py liveblog_demo --url http://$(URL_HOST):$(PORT)
	exec $(PY) -m project.serve -e "tcp:port=$(PORT):interface=$(subst :,\:,$(HOST)):backlog=$(BACKLOG)" \
		project.asgi:application

# Scale-out on one machine: PostgreSQL, Redis, two daphne processes behind Debian's nginx
# (the README's configuration, deploy/nginx.conf.template).
run-stack: $(VENV)/.runtime compiled-messages
	@scripts/ensure-debian-packages redis-server postgresql nginx
	exec $(PY) scripts/run_stack.py --port $(PORT)

system-test-deps:
	@scripts/ensure-debian-packages chromium redis-server postgresql nginx

test: $(VENV)/.dev node_modules/.installed bench/socketio/node_modules/.installed system-test-deps messages
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) -m ruff check .
	node_modules/.bin/eslint .
	$(PY) -m pytest $(PYTEST_ARGS)
	$(PY) -m tests.support.postgres_suite

# The property tests with many more, new examples (the "fuzz" Hypothesis profile, tests/conftest.py),
# and the OpenAPI/Schemathesis checks when they are here.
fuzz: $(VENV)/.dev
	$(PY) manage.py collectstatic --noinput -v0
	LIVEBLOG_FUZZ=1 $(PY) -m pytest -o timeout=3600 tests/test_prop_event_log.py \
		tests/test_prop_ws_frames.py $(wildcard tests/test_openapi.py) $(PYTEST_ARGS)

bench: $(VENV)/.dev bench/socketio/node_modules/.installed
	@scripts/ensure-debian-packages chromium
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) -m bench $(BENCH_ARGS)

# Lighthouse 12.2.3 (mobile) on the blog list, a reader page of 30 posts with photos and the
# signed-in console, every category, 3 runs each (bench/lighthouse.py): a table of the scores;
# fails when a category is below 0.95, or accessibility below 1.00.
lighthouse: $(VENV)/.dev node_modules/.installed
	@scripts/ensure-debian-packages chromium
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) -m bench.lighthouse $(LIGHTHOUSE_ARGS)

# pip-audit lives in a virtualenv of its own, pinned by requirements-audit.txt.
$(AUDIT_VENV)/.installed: requirements-audit.txt
	@scripts/ensure-venv $(PYTHON) $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-audit.txt
	@touch $@

# Known vulnerabilities of the pinned requirements (PyPI's advisories). Everything is pinned, so
# nothing is resolved (--no-deps, --disable-pip); --strict fails when a package could not be
# audited at all, so an unreachable advisory service is never a clean bill of health.
audit: $(AUDIT_VENV)/.installed
	$(AUDIT_VENV)/bin/pip-audit --strict --disable-pip --no-deps --progress-spinner off \
		-r requirements.txt -r requirements-dev.txt

# Python with ruff; every browser script, the service worker template and the browser tests with
# ESLint (eslint.config.js).
lint: $(VENV)/.dev node_modules/.installed
	$(PY) -m ruff check .
	node_modules/.bin/eslint .

clean:
	rm -rf $(VENV) var node_modules
