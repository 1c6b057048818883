# The commands people type; CI (.ci/run) calls the same ones.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# .env holds local settings (docker compose reads it itself), and the offline base images
# once `make images-offline` ran: those are the only values make takes from it.
-include .env
export POSTGRES_IMAGE PYTHON_IMAGE TESTCONTAINERS_RYUK_DISABLED

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The installer of both venvs (.venv and .venv-airflow), and the resolver of their locks.
UV_VERSION := 0.13.9
SERVICES := common schema aws loader generator replicator dashboard transform quality redshift
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
export DOCKER_BUILDKIT ?= 0

.PHONY: help install lock test unit lint typecheck lint-sql format up down images images-offline e2e clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv from requirements.lock: every service editable, the dev tools (zetl on .venv/bin)

# requirements.lock pins every third-party package of .venv (compiled by uv from
# requirements.in: every service's pyproject.toml and the workspace's extras), so two machines
# get the same versions; the services themselves are editable installs of this checkout.
$(VENV)/.installed: requirements.lock pyproject.toml $(foreach s,$(SERVICES),services/$(s)/pyproject.toml)
	@# flock: two make runs at once (a test and a lint) must not install into one venv together
	flock $(VENV).lock -c '$(PYTHON) -m venv $(VENV) \
	  && $(BIN)/pip install --quiet uv==$(UV_VERSION) \
	  && $(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock'
	touch $@

lock: install ## re-resolve requirements.lock from requirements.in (after changing a pyproject.toml's dependencies)
	$(BIN)/uv pip compile requirements.in --universal --python-version 3.11 -o requirements.lock

test: install ## run the whole test suite against real Postgres in containers
	$(BIN)/pytest --durations=15

# Marks decide what runs (pyproject.toml): a test that needs a container is marked docker in its
# module. Check that none is missing with the engine unreachable:
# DOCKER_HOST=tcp://127.0.0.1:1 make unit passes with nothing skipped for lack of Docker.
unit: install ## the fast loop: every test that needs no Docker and no platform, in under a minute
	$(BIN)/pytest -q -m "not docker and not e2e"

lint: install ## ruff, mypy and sqlfluff, as CI runs them (and the pre-commit hooks)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@$(MAKE) --no-print-directory typecheck lint-sql

typecheck: install ## mypy strict over the services, tests, benchmarks and the DAG
	$(BIN)/mypy $(foreach s,$(SERVICES),services/$(s)/src) tests bench conftest.py orchestration
	@# each service's tests on their own: test modules of the same name may live in several
	for d in $(sort $(dir $(wildcard services/*/tests/*.py))); do $(BIN)/mypy $$d || exit 1; done

lint-sql: install ## sqlfluff over transform/models, in the Postgres and the Redshift dialect
	cd transform && for dialect in postgres redshift; do \
	  ../$(BIN)/sqlfluff lint models --dialect $$dialect --disable-progress-bar || exit 1; done

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

up: ## start the local platform in the background
	$(COMPOSE) up -d --build

down: ## stop the local platform and delete its volumes
	$(COMPOSE) down --volumes --remove-orphans

images: ## build the platform's images (base images from PYTHON_IMAGE / POSTGRES_IMAGE)
	$(COMPOSE) build

images-offline: ## build the base images from Debian packages, for machines with no registry
	bash compose/offline/build.sh

e2e: install ## the whole compose platform end to end: load, generate, replicate, verify
	COMPOSE="$(COMPOSE)" $(BIN)/pytest -m e2e -rP tests/e2e

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# --- cloud promotion to AWS (infra/terraform, zetl aws, infra/scripts) ---
.PHONY: plan-aws deploy-aws destroy-aws check-infra

plan-aws: install ## terraform plan of the AWS stack (needs AWS credentials, infra/terraform/terraform.tfvars)
	bash infra/scripts/aws.sh plan

deploy-aws: install ## deploy to AWS: terraform apply, images, migrate, zero-ETL database, load, generator, dbt
	bash infra/scripts/aws.sh deploy

destroy-aws: install ## tear the AWS environment down (asks; CONFIRM=yes to skip) and list what is left
	bash infra/scripts/aws.sh destroy

check-infra: ## checkov over infra/terraform (own venv .venv-checkov), terraform fmt/validate where installed
	bash infra/scripts/check-infra.sh

# --- generator ---
.PHONY: bench-generator
bench-generator: install ## generator at full speed beside pgbench with the same statement shape
	$(BIN)/python -m bench.generator.run

# --- source model ERD and loader benchmark ---
.PHONY: erd bench-loader
erd: install ## docs/erd.md + docs/erd.png from a freshly migrated schema (Docker; graphviz `dot`)
	$(BIN)/python -m zetl.schema.erd --out docs

bench-loader: install ## zetl load beside a raw COPY of the same rows, 100k and 1M lines (Docker)
	$(BIN)/python -m bench.loader.run --sizes 100000,1000000

# --- replicator benchmark ---
.PHONY: bench-replicator
bench-replicator: install ## zetl replicator vs native logical replication, pg_recvlogical, pg_dump
	$(BIN)/python bench/replicator/bench.py
.PHONY: sample-data
sample-data: install ## regenerate data/raw, the sample export the local platform loads
	$(BIN)/zetl generate export --format storefront --messy --rows 400 --seed 1 --out data/raw
	$(BIN)/zetl generate export --format players --rows 200 --seed 1 --out data/raw

# --- transform: the dbt project (transform/) and its Redshift check ---
.PHONY: transform transform-check bench-transform
transform: install ## dbt build of transform/ in the warehouse (.env's WAREHOUSE_DATABASE_URL), after the replica link refresh
	set -a; [ -f .env ] && . ./.env; set +a; $(BIN)/zetl transform

transform-check: install ## the models' SQL checked for what Redshift rejects, offline (dbt parse/compile + sqlglot)
	$(BIN)/zetl transform check

bench-transform: install ## full dbt build vs the same SQL in psql, and an incremental build after 10,000 events (Docker)
	$(BIN)/python -m bench.transform.run

# --- data quality (zetl dq, expectations/) ---
.PHONY: dq bench-quality
dq: install ## every great_expectations checkpoint `zetl dq list` names (.env's settings)
	set -a; [ -f .env ] && . ./.env; set +a; \
	  checkpoints="$$($(BIN)/zetl dq list --names)" || exit $$?; \
	  for c in $$checkpoints; do $(BIN)/zetl dq run $$c || exit $$?; done

bench-quality: install ## each dq checkpoint beside the same checks as plain SQL, 1M-row replica (Docker)
	$(BIN)/python -m bench.quality.run

# --- platform: dashboard benchmark ---
.PHONY: bench-dashboard
bench-dashboard: install ## dashboard pages against marts built from a 1M-line replica, beside raw-table reads
	$(BIN)/python -m bench.dashboard.run --lines 1000000

# --- orchestration: the zetl_daily Airflow DAG, with Airflow in its own venv ---
.PHONY: airflow-venv airflow-lock test-orchestration
AIRFLOW_VENV := .venv-airflow

airflow-venv: $(AIRFLOW_VENV)/.installed ## Airflow, Cosmos and dbt in .venv-airflow, from orchestration/requirements.lock

$(AIRFLOW_VENV)/.installed: orchestration/requirements.lock
	flock $(AIRFLOW_VENV).lock -c '$(PYTHON) -m venv $(AIRFLOW_VENV) \
	  && $(AIRFLOW_VENV)/bin/pip install --quiet uv==$(UV_VERSION) \
	  && $(AIRFLOW_VENV)/bin/uv pip install --quiet --python $(AIRFLOW_VENV)/bin/python -r orchestration/requirements.lock'
	touch $@

airflow-lock: airflow-venv ## re-resolve orchestration/requirements.lock from orchestration/requirements.in
	cd orchestration && ../$(AIRFLOW_VENV)/bin/uv pip compile requirements.in --universal \
	  --python-version 3.11 -o requirements.lock

test-orchestration: install airflow-venv ## the zetl_daily DAG: its structure, and real runs against the replicated warehouse
	$(BIN)/pytest orchestration/tests

# --- soak: the platform under seeded random faults (bench/soak/run.py) ---
.PHONY: soak
# Root (or sudo) is needed: the warehouse's small disk is a loop device. ZETL_SOAK_SEED and
# ZETL_SOAK_RATE (events/s) are read too; CI runs ZETL_SOAK_MINUTES=5.
ZETL_SOAK_MINUTES ?= 60
soak: install ## the compose platform under load and every kind of fault for ZETL_SOAK_MINUTES (60); report per fault kind
	ZETL_SOAK_MINUTES=$(ZETL_SOAK_MINUTES) $(BIN)/python -m bench.soak.run

# --- Postgres majors (15 to 18; the default image is 17) ---
.PHONY: test-major
# What depends on the source server's major runs on every major: what the server itself
# produces or decides, that is pgoutput's bytes and the protocol version it offers (pgoutput,
# protocol4, receiver, streaming), the slot and the initial copy's snapshot (replication), the
# catalogs DDL capture and eligibility read (fidelity, also doctor's version rules;
# schema_changes; eligibility), the slot's WAL limits and invalidation (operations), and the
# offline images themselves. The rest runs on the default major only: tests without a server
# (netchange, streams, pgoutput_bytes, config) would run the same code again; the warehouse
# side (apply, destination, statements, state, registry, database_options) stands in for
# Redshift, not for RDS's majors; crash, restarts and commands test zetl's own recovery and
# command lines over the same server features.
MAJOR_TESTS ?= $(addprefix services/replicator/tests/test_,$(addsuffix .py,\
  pgoutput protocol4 receiver streaming replication fidelity schema_changes eligibility \
  operations)) tests/offline_images
test-major: install ## replicator and image-contract tests on one Postgres major: make test-major MAJOR=16
	@case "$(MAJOR)" in 15|16|17|18) ;; *) echo "usage: make test-major MAJOR=15|16|17|18" >&2; exit 2;; esac
	@# The official image where a registry answers, else the offline stand-in of that major.
	image="$(MAJOR_IMAGE)"; \
	if [ -z "$$image" ]; then \
	  if timeout 60 docker pull -q postgres:$(MAJOR) >/dev/null 2>&1; then image=postgres:$(MAJOR); \
	  else image="$$(bash compose/offline/build.sh postgres $(MAJOR))" || exit 1; fi; \
	fi; \
	echo "=== PostgreSQL $(MAJOR): $$image"; \
	POSTGRES_IMAGE="$$image" POSTGRES_MAJOR=$(MAJOR) $(BIN)/pytest -x $(MAJOR_TESTS)

# --- the Redshift front ---
.PHONY: bench-redshift
bench-redshift: install ## the front's relay (1M-row result, 100 clients) beside direct Postgres; translation per statement (Docker)
	$(BIN)/python -m bench.redshift.wire
	if [ -f bench/redshift/translate.py ]; then $(BIN)/python -m bench.redshift.translate; fi
