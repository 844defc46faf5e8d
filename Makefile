# Every target sets up what it needs on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SHARED_DATA ?= ../shared/data

.PHONY: help setup test lint format demo package bench clean

help:
	@echo "make demo     run the whole pipeline locally on $(SHARED_DATA)"
	@echo "make test     lint and run the whole test suite"
	@echo "make package  sls package offline, then cfn-lint and checkov on the template"
	@echo "make bench    ETL benchmark against the embedded warehouse"

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.3.1
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: setup lint
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) node_modules .serverless dist
