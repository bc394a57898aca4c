# Kassa — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
MIGRATIONS := site/migrations
XDIST ?= 2

.PHONY: run run-prod load test test-properties test-fast lint i18n translations bench system-deps browser-deps prod-deps bench-deps db clean help

# The production profile (G1): PostgreSQL and Redis on this machine unless the environment names others.
PROD_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/kassa
PROD_REDIS_URL ?= redis://127.0.0.1:6379/0

help:
	@echo "make run    serve the app with demo data on http://127.0.0.1:5000 (worker included)"
	@echo "make test   run the whole test suite (SQLite, PostgreSQL and Chromium)"
	@echo "make run-prod  nginx + 2 gunicorn servers + 2 workers on PostgreSQL and Redis, http://127.0.0.1:8080"
	@echo "make load   G3: load + faults on the production profile, figures and invariants as JSON"
	@echo "make bench  run the benchmarks;  make lint  ruff + import-linter;  make i18n  update translation catalogs"

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "Installing pinned dependencies into $(VENV) (log: $(VENV)/install.log) ..."
	@$(VENV)/bin/pip install --quiet --upgrade pip > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@$(VENV)/bin/pip install --quiet -e '.[dev]' >> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# WeasyPrint (receipts, invoices) needs Pango; install it from Debian when it is missing and we can.
system-deps:
	@if ! ldconfig -p | grep -q libpango-1.0; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core; \
	  else echo "WeasyPrint needs Pango: sudo apt-get install -y libpango-1.0-0 libpangoft2-1.0-0"; exit 1; fi; fi

# Browser tests drive Debian's Chromium (never a downloaded build); pdftoppm/pdftotext read PDFs.
browser-deps:
	@missing=""; command -v chromium >/dev/null || missing="$$missing chromium"; \
	 command -v pdftotext >/dev/null || missing="$$missing poppler-utils"; \
	 if [ -n "$$missing" ]; then \
	   if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	   else echo "Browser tests need:$$missing (sudo apt-get install -y$$missing)"; exit 1; fi; fi

# The production profile puts nginx (Debian's) in front of the servers; its tests make a certificate with openssl
# and check the systemd units with systemd-analyze; G3's load test restarts a PostgreSQL cluster and a Redis of
# its own (their server programs).
prod-deps:
	@missing=""; command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	 command -v openssl >/dev/null || missing="$$missing openssl"; \
	 command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	 command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	 ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	 if [ -n "$$missing" ]; then \
	   if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	   else echo "The production profile needs:$$missing (sudo apt-get install -y$$missing)"; exit 1; fi; fi

translations: $(STAMP)
	@set -o pipefail; $(VENV)/bin/pybabel compile -d site/translations 2>&1 | { grep -v '^compiling catalog' || true; }

db: $(STAMP) translations system-deps
	$(FLASK) db upgrade -d $(MIGRATIONS)

run: db
	$(FLASK) kassa seed-demo
	$(FLASK) kassa serve

run-prod: $(STAMP) translations system-deps prod-deps
	export KASSA_DATABASE_URL="$${KASSA_DATABASE_URL:-$(PROD_DATABASE_URL)}" \
	       KASSA_REDIS_URL="$${KASSA_REDIS_URL:-$(PROD_REDIS_URL)}"; \
	$(FLASK) kassa create-database && $(FLASK) db upgrade -d $(MIGRATIONS) && \
	$(FLASK) kassa seed-demo --if-empty && $(FLASK) kassa run-prod

# Bytecode is written even where the environment turns it off: the tests start many app processes (servers, the
# CLI, crash replays), each of which would otherwise compile every module of Kassa from source again.
test: $(STAMP) translations system-deps browser-deps prod-deps
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -n $(XDIST) --dist loadgroup -q -p no:cacheprovider --durations=25

# ruff for style, import-linter for the architecture (layers, service packages, no cycles: pyproject.toml).
# K7's property test at full size: 1,000 shuffled, duplicated Stripe event sequences per database (~20 min).
test-properties: $(STAMP) translations system-deps
	K7_SEQ=1000 $(PY) -m pytest -n $(XDIST) -q -p no:cacheprovider -s tests/web/test_k7_event_properties.py

lint: $(STAMP)
	$(VENV)/bin/ruff check site tests benchmarks
	$(VENV)/bin/lint-imports

i18n: $(STAMP)
	$(VENV)/bin/pybabel extract -F site/babel.cfg -k _l -k N_ --no-location --sort-output -o site/translations/messages.pot site
	$(VENV)/bin/pybabel update -i site/translations/messages.pot -d site/translations --no-fuzzy-matching
	@echo "Catalogs updated: translate the empty msgstr entries in site/translations/*/LC_MESSAGES/messages.po"

# Throughput benchmarks drive the app with wrk (from Debian), next to the browser for Lighthouse.
bench-deps: browser-deps
	@if ! command -v wrk >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
	  else echo "Benchmarks need wrk: sudo apt-get install -y wrk"; exit 1; fi; fi

bench: $(STAMP) translations system-deps bench-deps
	$(PY) -m benchmarks.run_all

# G3: the production profile under load for LOAD_SECONDS, with a server and a worker killed and Redis and
# PostgreSQL restarted (its own, never the ones on 5432/6379); prints the figures and the invariants as JSON.
LOAD_SECONDS ?= 120
load: $(STAMP) translations system-deps prod-deps
	$(PY) -m benchmarks.g3_load --seconds $(LOAD_SECONDS) --buyers 6 --merchants 2

clean:
	rm -rf $(VENV) instance/kassa.db* tests/.screenshots
