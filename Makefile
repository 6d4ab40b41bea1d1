# Two commands do everything on a fresh machine:  make run  |  make test
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000

.DEFAULT_GOAL := help
DEMO_CUSTOMERS ?= 2000
.PHONY: help run setup test lint typecheck migrate seed bench bench-quick clean worker beat

help:
	@echo "make run         install, migrate, load demo data, train, score and serve on 127.0.0.1:$(PORT)"
	@echo "make setup       the demo's set-up only (what make run does before serving)"
	@echo "make test        install and run the whole test suite"
	@echo "make bench       full benchmark harness (writes bench/results/)"
	@echo "make bench-quick small benchmark run (< 5 min)"
	@echo "make lint        ruff + mypy"

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

.env:
	$(PY) -m config.keygen --write .env
	@echo "Wrote .env with fresh random keys for local use (keep it out of version control)."

# The demo's set-up, shared by `make run` and CI (which runs it before `make test` in the same clone).
setup: $(VENV)/.installed .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_seed --if-empty --customers $(DEMO_CUSTOMERS)
	$(PY) manage.py train --if-none
	$(PY) manage.py rescore --all
	$(PY) manage.py demo_engagement

# The demo never serves Django's debug pages (DEBUG=false); --insecure lets runserver still serve static files.
# It accepts webhook receivers on this machine (http://127.0.0.1:...), so that a local receiver can be tried;
# production settings accept https only and no private or loopback address unless listed (docs/WEBHOOKS.md).
run: setup
	$(PY) manage.py demo_credentials --port $(PORT)
	DEBUG=false WEBHOOK_ALLOW_HTTP=true WEBHOOK_ALLOWED_PRIVATE_HOSTS=127.0.0.1,localhost,::1 $(PY) manage.py runserver 127.0.0.1:$(PORT) --noreload --insecure

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy config audit profiles consent scoring engagement kpis subject_rights

migrate: $(VENV)/.installed
	$(PY) manage.py migrate --noinput

worker: $(VENV)/.installed
	$(VENV)/bin/celery -A config worker --loglevel=INFO

beat: $(VENV)/.installed
	$(VENV)/bin/celery -A config beat --loglevel=INFO

bench: $(VENV)/.installed
	$(PY) -m bench.run --full

bench-quick: $(VENV)/.installed
	$(PY) -m bench.run --quick

clean:
	rm -rf db.sqlite3 var
