# raidstudy: `make help` lists the targets. Every target sets up .venv on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help setup run test test-slow data ingest notebooks bench clean readme

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install raidstudy with its test tools

run: $(STAMP) ## run the main job: the SPARKS 2020 study -> results/sparks-2020/ and results/sparks-2020-robustness/
	$(BIN)/raidstudy run notebooks/02-event-study.ipynb
	$(BIN)/raidstudy run notebooks/04-robustness.ipynb -p output_dir results/sparks-2020-robustness

test: $(STAMP) ## run the test suite (fast; skips what needs ../shared when it is absent)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP) ## run every test, the 500-replication coverage simulations included
	$(BIN)/python -m pytest $(PYTEST_ARGS)

data: $(STAMP) ## rebuild data/processed/ from the nZEDb dumps (../shared/... or data/raw/nzedb)
	$(BIN)/raidstudy build

ingest: $(STAMP) ## parse and deduplicate the dumps into data/interim/releases.parquet
	$(BIN)/raidstudy ingest

notebooks: $(STAMP) ## re-pair the notebooks with their py:percent text (jupytext --sync)
	$(BIN)/jupytext --sync notebooks/*.ipynb

bench: $(STAMP) ## run the benchmarks (ratios against baselines measured in the same run)
	$(BIN)/python benchmarks/bench_its.py
	$(BIN)/python benchmarks/bench_placebo.py
	$(BIN)/python benchmarks/bench_breaks.py
	$(BIN)/python benchmarks/bench_speccurve.py
	$(BIN)/python benchmarks/bench_ingest.py

clean: ## remove results/ and caches (keeps .venv and data/)
	rm -rf results .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

readme: $(STAMP) ## refresh the README's results section from results/sparks-2020 (after make run)
	$(BIN)/python -m raidstudy.report.readme results/sparks-2020
