# Every target sets up what it needs on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LINT_VENV := .venv-lint
SHARED_DATA ?= ../shared/data

.PHONY: help setup runtimes java test test-fast lint format demo package bench stress clean test-glue39 node-version

help:
	@echo "make demo     run the whole pipeline locally on $(SHARED_DATA)"
	@echo "make test     lint, the whole test suite, and the ETL tests on Python 3.9"
	@echo "make test-fast  the tests that need no local stack and no packaging (the edit loop)"
	@echo "make package  sls package offline, then cfn-lint, checkov and the IAM policy lint on the template"
	@echo "make runtimes the AWS runtimes the local stack runs code on (Glue Python shell 3.9, Glue 5.0 Spark, Lambda 3.12)"
	@echo "make bench    ETL benchmark against the embedded warehouse"
	@echo "make stress   a burst of uploads through the local stack (STRESS_ARGS=\"--files 200 --rows 2000\")"
	@echo "make test-glue39  the ETL job's tests on Glue's runtime (Python 3.9, analytics pandas)"
	@echo "make node-version  the Node.js every sls command runs on (24, from npm ci)"

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml emulator/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.3.1
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e . -e emulator
	touch $@

setup: $(VENV)/.installed

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: setup lint runtimes node_modules/.npm-ci.stamp $(LINT_VENV)/.installed
	$(VENV)/bin/pytest
	$(MAKE) test-glue39

# The edit loop: every test that needs no local stack and no packaged template.
test-fast: setup runtimes node_modules/.npm-ci.stamp
	$(VENV)/bin/pytest -m "not e2e and not template"

# npm ci once per package-lock.json: osls and its plugins package serverless.yml offline, and
# Node.js 24 LTS runs them. The npm package `node` (pinned in package.json) installs Node 24's
# own binary for this platform into node_modules/.bin, and npx puts node_modules/.bin first on
# PATH, so every `npx sls ...` (scripts/package.sh, the local stack's packaging, sls invoke and
# deploy) runs on Node 24 whatever Node runs npm itself: Debian's apt offers only Node 20, and
# osls 4.3.1 supports ^20.19 || ^22.13 || >=24. NODE is that Node.
NODE := node_modules/.bin/node

node_modules/.npm-ci.stamp: package.json package-lock.json .npmrc
	npm ci --no-audit --no-fund --loglevel=error
	@$(NODE) --version | grep -q '^v24\.' || \
	  { echo "$(NODE) is not Node 24 ($$($(NODE) --version 2>&1)): run npm ci again"; exit 1; }
	touch $@

# The Node every sls command runs on (tests/test_node_version.py holds it to 24).
node-version: node_modules/.npm-ci.stamp
	@$(NODE) --version

# cfn-lint, checkov and parliament in their own virtualenv: their dependencies conflict with moto's.
$(LINT_VENV)/.installed: requirements-lint.txt
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install --quiet --upgrade pip==24.3.1
	$(LINT_VENV)/bin/python -m pip install --quiet -r requirements-lint.txt
	touch $@

# sls package offline (no AWS credentials), then cfn-lint, checkov and parliament
# (scripts/lint_policies.py, every IAM policy document) on the template.
package: setup node_modules/.npm-ci.stamp $(LINT_VENV)/.installed
	scripts/package.sh

# The pipeline on this machine, deployed from serverless.yml into the local emulator.
# Without $(SHARED_DATA), a synthetic dataset from flightpipe_local.synthetic stands in.
# DEMO_PARAMS are stage parameters: by default files of 1 MB or more (the BTS month) load on
# the Spark job and smaller ones (the sample) on the Python shell job, so the demo shows both
# engines; `make demo DEMO_PARAMS=` runs it with serverless.yml's defaults.
DEMO_DIR := .state/demo
DEMO_PARAMS ?= --param sparkThresholdBytes=1000000
demo: setup runtimes node_modules/.npm-ci.stamp
	@if [ -d "$(SHARED_DATA)" ]; then \
	  data="$(SHARED_DATA)"; files="$$data/sample_flights.csv $$data/bts_ontime_2023_01_OK.csv"; \
	else \
	  echo "$(SHARED_DATA) not found: generating a synthetic dataset in $(DEMO_DIR)/data (flightpipe_local.synthetic)"; \
	  data="$(DEMO_DIR)/data"; files="$$($(PY) -m flightpipe_local.demo_data $$data)"; \
	fi; \
	$(VENV)/bin/flightpipe local run $(DEMO_PARAMS) --airports "$$data/airports.csv" $$files

# The AWS runtimes the local stack runs the deployed code on, each a virtualenv holding only what
# that runtime provides (flightpipe_local.runtimes names them): the Glue Python shell job on
# Python 3.9 with the "analytics" library set, the Lambdas on Python 3.12 with the runtime's SDK.
# A missing interpreter stops here with one line saying how to install it.
GLUE_RUNTIME := .venv-runtime-glue-py39
SPARK_RUNTIME := .venv-runtime-glue5-spark
LAMBDA_RUNTIME := .venv-runtime-lambda-py312

runtimes: $(GLUE_RUNTIME)/.installed $(SPARK_RUNTIME)/.installed $(LAMBDA_RUNTIME)/.installed java

$(GLUE_RUNTIME)/.installed: requirements-glue39.txt
	@python=$$(scripts/find-python.sh 3.9) && rm -rf $(GLUE_RUNTIME) && $$python -m venv $(GLUE_RUNTIME)
	$(GLUE_RUNTIME)/bin/python -m pip install --quiet --upgrade pip==24.3.1
	$(GLUE_RUNTIME)/bin/python -m pip install --quiet -r requirements-glue39.txt
	touch $@

# The Glue 5.0 Spark job: Python 3.11 with the modules Glue 5.0 provides and PySpark 3.5.4,
# which runs on the machine's Java 17 (Glue 5.0's Java).
$(SPARK_RUNTIME)/.installed: requirements-glue5-spark.txt
	@python=$$(scripts/find-python.sh 3.11) && rm -rf $(SPARK_RUNTIME) && $$python -m venv $(SPARK_RUNTIME)
	$(SPARK_RUNTIME)/bin/python -m pip install --quiet --upgrade pip==24.3.1
	$(SPARK_RUNTIME)/bin/python -m pip install --quiet -r requirements-glue5-spark.txt
	touch $@

java:
	@command -v java >/dev/null || [ -x "$$JAVA_HOME/bin/java" ] || \
	  { echo "Java 17 is needed for the Glue 5.0 Spark job (Debian: apt-get install openjdk-17-jre-headless)"; exit 1; }

$(LAMBDA_RUNTIME)/.installed: requirements-lambda-runtime.txt
	@python=$$(scripts/find-python.sh 3.12) && rm -rf $(LAMBDA_RUNTIME) && $$python -m venv $(LAMBDA_RUNTIME)
	$(LAMBDA_RUNTIME)/bin/python -m pip install --quiet --upgrade pip==24.3.1
	$(LAMBDA_RUNTIME)/bin/python -m pip install --quiet -r requirements-lambda-runtime.txt
	touch $@

# The ETL job's tests on the Glue Python shell runtime: Python 3.9 with the pandas/numpy/boto3
# of Glue's "analytics" library set, plus the test tools (requirements-glue39-test.txt).
VENV39 := .venv-glue39

$(VENV39)/.installed: requirements-glue39.txt requirements-glue39-test.txt pyproject.toml emulator/pyproject.toml
	@python=$$(scripts/find-python.sh 3.9) && rm -rf $(VENV39) && $$python -m venv $(VENV39)
	$(VENV39)/bin/python -m pip install --quiet --upgrade pip==24.3.1
	$(VENV39)/bin/python -m pip install --quiet -r requirements-glue39-test.txt
	$(VENV39)/bin/python -m pip install --quiet --no-deps -e . -e emulator
	touch $@

test-glue39: $(VENV39)/.installed
	$(VENV39)/bin/python -m pytest -p no:cacheprovider tests/test_etl_*.py tests/test_synthetic.py

bench: setup
	$(PY) bench/etl_bench.py

# A burst of uploads through the local stack: a benchmark, not a test (bench/stress.py).
STRESS_ARGS ?=
stress: setup runtimes node_modules/.npm-ci.stamp
	$(PY) bench/stress.py $(STRESS_ARGS)

clean:
	rm -rf $(VENV) $(VENV39) $(LINT_VENV) $(GLUE_RUNTIME) $(SPARK_RUNTIME) $(LAMBDA_RUNTIME) node_modules .serverless dist .state/cache
