# Twinsite: `make run` to start everything with a demo twin, `make test` to run the suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
# These targets are for a development machine: development mode unless the caller says
# otherwise. The settings default to DEBUG off; production runs its processes with
# DEBUG=0 (or unset) and a SECRET_KEY of its own.
export DEBUG ?= 1

.PHONY: run test setup services python migrate models lint audit fuzz bench worker-check release-file clean

run: export DEBUG := 1
# The broker keeps its queue across a restart (append-only file): scripts/persistent-redis.sh.
run: export REDIS_URL := $(or $(REDIS_URL),redis://127.0.0.1:$(or $(TWIN_REDIS_PORT),6390)/0)
run: setup ## install what is missing, seed the demo twin, start web + workers + beat
	@bash scripts/persistent-redis.sh
	@$(MANAGE) seed_demo
	@echo "  Twinsite is starting at http://127.0.0.1:8000  (Ctrl-C stops web, workers and beat)"
	@echo
	@$(VENV)/bin/honcho start -f Procfile

test: setup ## the whole suite: lint, migrations check, pytest (unit, worker, browser)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MANAGE) makemigrations --check --dry-run
	$(VENV)/bin/pytest --create-db

setup: services python migrate models ## idempotent: a second run takes a few seconds

services:
	@bash scripts/setup-services.sh

python:
	@bash scripts/setup-python.sh

migrate: python services
	@$(MANAGE) migrate --noinput -v 0

models: python
	@$(MANAGE) prepare_models

lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

audit: python ## known vulnerabilities in the pinned requirements (asks PyPI's advisory data; needs the network)
	$(VENV)/bin/pip-audit --requirement requirements.txt --no-deps --disable-pip --strict --progress-spinner off

bench: setup ## benchmarks against same-run baselines; results in bench/results/; then the long API fuzz
	$(PY) -m bench.run_all
	@$(MAKE) --no-print-directory fuzz

fuzz: setup ## the REST API fuzzed from its OpenAPI schema, many examples per operation (CI runs a few)
	TWIN_FUZZ_EXAMPLES=$${TWIN_FUZZ_EXAMPLES:-150} $(VENV)/bin/pytest -q tests/api/test_fuzz.py

release-file: ## the release Sentry reports (twinsite/sentry.py): `git describe` of this build, into RELEASE
	echo "twinsite@$$(git describe --tags --always --dirty)" > RELEASE

clean: ## remove generated data (keeps the venv and the model cache)
	rm -rf var/uploads var/datasets var/adapters var/runs staticfiles
