# Ordo: `make run` starts the whole engine on this machine; `make test` proves it.
# Both install what they need into .venv (uv included) from nothing but Python 3.11+.

SHELL := bash
.DEFAULT_GOAL := help
VENV := .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
# The first Python on PATH that is 3.11 or newer.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& echo $$p && break; done)

.PHONY: help install run up down test test-fast bench chaos lint fmt typecheck schemas generate clean

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(UV):
	@test -n "$(PYTHON)" || { echo "Ordo needs Python 3.11 or newer on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV) ## Install every package (locked versions) into .venv
	$(UV) sync --frozen --all-packages --quiet

run: install ## Start NATS, Redis and the six services on this machine (Ctrl-C stops all)
	$(VENV)/bin/ordo up

up: ## docker-compose: build and start everything, wait until healthy (needs Docker and .env)
	@docker info >/dev/null 2>&1 || { echo "make up needs a running Docker engine (make run needs none)"; exit 1; }
	@test -f .env || { echo "make up reads .env: cp deploy/compose.env.example .env, then fill it in"; exit 1; }
	docker compose up --build --detach --wait

down: ## docker-compose: stop and remove the containers (the volumes stay)
	docker compose down

test: install lint typecheck ## Lint, type-check and run every test (unit, service, integration)
	$(VENV)/bin/pytest

test-fast: install ## Run the tests without the integration suite
	$(VENV)/bin/pytest -m "not integration"

bench: install ## Measure speed and memory against the physical floor (bench/results/latest.json)
	$(VENV)/bin/python -m ordo.bench

chaos: install ## Kill services, restart NATS, fail the venue under load; check nothing was lost
	$(VENV)/bin/python -m ordo.bench.chaos

lint: install ## Ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: install ## Format and auto-fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install ## mypy over the libraries, services and CLI
	$(VENV)/bin/mypy libs/contracts/src libs/kit/src services/*/src cli/src bench/src

schemas: install ## Record the JSON Schemas of new or compatibly changed contract messages
	$(VENV)/bin/python -m ordo.contracts.schemas

generate: install ## Regenerate the deployment files derived from the contracts and config/ordo.yaml
	$(VENV)/bin/python deploy/generate.py

clean: ## Remove .venv and var/
	rm -rf $(VENV) var
