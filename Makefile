# The two commands of the README: `make run` (the service) and `make test` (the suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
REDIS_URL ?= redis://127.0.0.1:6379/0
export REDIS_URL

.PHONY: run test lint bench clean

$(VENV)/.installed-run: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	@$(PY) -m scripts.check_redis "$(REDIS_URL)"
	$(VENV)/bin/flask --app api init-db
	$(VENV)/bin/flask --app api seed-sample
	$(VENV)/bin/honcho start --port $${PORT:-8000}  # honcho gives web (first) this PORT

test: $(VENV)/.installed-dev
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(VENV)/.installed-dev
	$(PY) -m bench.run_bench

clean:
	rm -rf $(VENV) instance/*.sqlite3* instance/celerybeat-schedule*
