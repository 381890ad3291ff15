# raidstudy: `make help` lists the targets. Every target sets up .venv on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
BOOT := $(VENV)/.bootstrap
UV_VERSION := 0.13.9
PYTEST_ARGS ?=

.PHONY: help setup warm lock run test test-slow data ingest notebooks bench clean readme

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Set-up installs the exact versions in $(LOCK) (see README, "Dependencies and the lock"):
# with uv from a small bootstrap venv when it can be had, else with pip from the same lock.
# RAIDSTUDY_INSTALLER=pip forces the pip path; RAIDSTUDY_NO_LOCK=1 installs without the lock.
$(STAMP): pyproject.toml $(LOCK)
	@test -n "$$RAIDSTUDY_NO_LOCK" || $(PYTHON) src/raidstudy/lock.py check
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ -n "$$RAIDSTUDY_NO_LOCK" ]; then \
	  echo "make setup: installing without the lock (pip install -e '.[test]')"; \
	  $(BIN)/python -m pip install --quiet -e '.[test]'; \
	elif [ "$${RAIDSTUDY_INSTALLER:-uv}" != pip ] && { test -x $(BOOT)/bin/uv || \
	    { $(PYTHON) -m venv $(BOOT) && $(BOOT)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); }; } \
	  && $(BOOT)/bin/uv pip install --quiet --python $(BIN)/python --compile-bytecode -r $(LOCK) \
	  && $(BOOT)/bin/uv pip install --quiet --python $(BIN)/python --no-deps -e .; then \
	  echo "make setup: installed $(LOCK) with uv $(UV_VERSION)"; \
	else \
	  if [ "$${RAIDSTUDY_INSTALLER:-uv}" != pip ]; then echo "make setup: uv unavailable or failed; installing $(LOCK) with pip"; fi; \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(LOCK) \
	  && $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e . ; \
	fi
	@$(MAKE) --no-print-directory warm
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install raidstudy with its test tools, exact versions from requirements.lock

warm: ## make the first study run as fast as later ones (byte-code, font cache, one kernel start)
	@$(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') src >/dev/null || true
	@MPLBACKEND=Agg $(BIN)/python -c 'import io, matplotlib.pyplot as plt; f, a = plt.subplots(); a.plot([0, 1]); a.set_title("warm"); f.savefig(io.BytesIO(), format="png")' || true
	@$(BIN)/python -c 'from jupyter_client.manager import start_new_kernel; km, kc = start_new_kernel(kernel_name="python3"); kc.execute_interactive("import raidstudy.study, matplotlib.pyplot", timeout=120); kc.stop_channels(); km.shutdown_kernel(now=True)' >/dev/null 2>&1 || true

lock: ## recompile requirements.lock from pyproject.toml (uv, pinned version, Python 3.11 on Linux x86_64)
	@test -x $(BOOT)/bin/uv || { $(PYTHON) -m venv $(BOOT) && $(BOOT)/bin/pip install --quiet uv==$(UV_VERSION); }
	$(BOOT)/bin/$(shell $(PYTHON) -c 'import sys; sys.path.insert(0, "src/raidstudy"); import lock; print(lock.UPDATE_COMMAND)') >/dev/null

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
