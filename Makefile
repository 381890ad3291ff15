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
# with uv when it can be had, else with pip from the same lock. uv goes into $(BOOT), put
# there by the pip of $(PYTHON) when it has one, else by the venv's. The venv is made
# without pip (its ensurepip step alone takes 3 s) and gets pip afterwards, from uv, or
# from ensurepip when pip itself has to install. Neither path byte-compiles the whole
# environment: `make warm` compiles what the study imports. RAIDSTUDY_INSTALLER=pip forces
# the pip path; RAIDSTUDY_NO_LOCK=1 installs without the lock.
VENV_PIP = { test -x $(BIN)/pip || $(BIN)/python -m ensurepip --default-pip >/dev/null \
  || { echo "make setup: the venv cannot get pip: $(PYTHON) has no ensurepip (Debian, Ubuntu: apt install python3-venv)" >&2; false; }; }
# (pip install --target into a folder left half-made by an interrupted install would succeed
# without uv, hence the rm and the final test -x)
UV_FROM_PIP = -m pip install --quiet --disable-pip-version-check --only-binary :all: --target $(BOOT) uv==$(UV_VERSION)
GET_UV = { test -x $(BOOT)/bin/uv \
  || { rm -rf $(BOOT); $(PYTHON) $(UV_FROM_PIP) 2>/dev/null && test -x $(BOOT)/bin/uv; } \
  || { rm -rf $(BOOT) && $(VENV_PIP) && $(BIN)/python $(UV_FROM_PIP) && test -x $(BOOT)/bin/uv; }; }
$(STAMP): pyproject.toml $(LOCK)
	@test -n "$$RAIDSTUDY_NO_LOCK" || $(PYTHON) src/raidstudy/lock.py check
	@test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	@if [ -n "$$RAIDSTUDY_NO_LOCK" ]; then \
	  echo "make setup: installing without the lock (pip install -e '.[test]')"; \
	  $(VENV_PIP) && $(BIN)/python -m pip install --quiet -e '.[test]'; \
	elif [ "$${RAIDSTUDY_INSTALLER:-uv}" != pip ] && $(GET_UV) \
	  && $(BOOT)/bin/uv pip install --quiet --python $(BIN)/python -r $(LOCK) \
	  && $(BOOT)/bin/uv pip install --quiet --python $(BIN)/python --no-deps -e .; then \
	  test -x $(BIN)/pip || $(BOOT)/bin/uv pip install --quiet --python $(BIN)/python pip || $(VENV_PIP) \
	    || echo "make setup: warning: .venv has no pip (neither uv nor ensurepip could install it)" >&2; \
	  echo "make setup: installed $(LOCK) with uv $(UV_VERSION)"; \
	else \
	  if [ "$${RAIDSTUDY_INSTALLER:-uv}" != pip ]; then echo "make setup: uv unavailable or failed; installing $(LOCK) with pip"; fi; \
	  $(VENV_PIP) \
	  && $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -r $(LOCK) \
	  && $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile --no-deps -e . ; \
	fi
	@$(MAKE) --no-print-directory warm
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install raidstudy with its test tools, exact versions from requirements.lock

# The warm-up runs a one-cell notebook the way `raidstudy run` does (papermill, the study's
# kernel and inline backend, the HTML report): that kernel imports every raidstudy module and
# the libraries they import inside functions, draws a figure (matplotlib's font cache) and so
# writes the byte-code of just what a study uses (a quarter of the environment's files);
# PYTHONDONTWRITEBYTECODE is cleared for it because writing byte-code is its purpose.
# Test-only libraries are imported by a second process at the same time.
define WARM_PY
import os, subprocess, sys, tempfile
from pathlib import Path
tests = subprocess.Popen([sys.executable, "-c", "import pytest, hypothesis.strategies, yaml, statsmodels.api, distributed"])
import nbformat, papermill
import raidstudy.cli
from raidstudy.study.runs import INLINE_BACKEND, KERNEL, render_html
CELL = """
import importlib, io, pkgutil, sys
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
import raidstudy
for name in [m.name for m in pkgutil.walk_packages(raidstudy.__path__, "raidstudy.")] + [
        "seaborn", "tabulate", "linearmodels.panel", "scipy.stats.qmc", "statsmodels.tsa.statespace.sarimax",
        "statsmodels.stats.diagnostic", "statsmodels.stats.multitest"]:
    try:
        importlib.import_module(name)
    except Exception as err:  # warm what can be warmed
        print(f"make warm: import {name} failed: {err}", file=sys.stderr)
f, a = plt.subplots(); a.plot([0, 1]); a.set_title("warm"); f.savefig(io.BytesIO(), format="pdf")
display(Markdown("warm")); display(f)
"""
with tempfile.TemporaryDirectory() as d:
    src, out = Path(d, "warm.ipynb"), Path(d, "out.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)]), src)
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    papermill.execute_notebook(str(src), str(out), kernel_name=KERNEL, progress_bar=False,
                               extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    render_html(out, Path(d, "report.html"), title="warm")
tests.wait()
endef
export WARM_PY

warm: ## make the first study run as fast as later ones (byte-code of what a study imports, font cache, one kernel start)
	@PYTHONDONTWRITEBYTECODE= $(BIN)/python -c "$$WARM_PY" >/dev/null 2>$(VENV)/warm.log \
	  || echo "make warm: the warm-up failed, so the first study run will be slower (why: $(VENV)/warm.log)"

lock: ## recompile requirements.lock from pyproject.toml (uv, pinned version, Python 3.11 on Linux x86_64)
	@test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	@$(GET_UV)
	UV_PYTHON_DOWNLOADS=never $(BOOT)/bin/$(shell $(PYTHON) -c 'import sys; sys.path.insert(0, "src/raidstudy"); import lock; print(lock.UPDATE_COMMAND)') >/dev/null

run: $(STAMP) ## run the main job: the SPARKS 2020 study -> results/sparks-2020{,-robustness,-events-groups}/
	$(BIN)/raidstudy run notebooks/02-event-study.ipynb
	$(BIN)/raidstudy run notebooks/04-robustness.ipynb -p output_dir results/sparks-2020-robustness
	$(BIN)/raidstudy run notebooks/03-events-and-groups.ipynb -p output_dir results/sparks-2020-events-groups

# The suite runs on TEST_WORKERS processes (pytest-xdist; auto: one per core; 0: in this
# process). Each worker gets the next test file when it is free, costliest first
# (tests/conftest.py orders the files by their tests' heavy(seconds) marks;
# --no-loadscope-reorder keeps that order). With a worker on every core, BLAS threads would
# only fight over the cores. (Not --dist loadgroup: with pytest 9.2 it groups nothing,
# pytest-xdist issue 1386.)
TEST_WORKERS ?= auto
TEST_ENV := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

test: $(STAMP) ## run the test suite on every core (fast; skips what needs ../shared when it is absent)
	$(TEST_ENV) $(BIN)/python -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

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
	$(BIN)/python benchmarks/bench_staggered.py
	$(BIN)/python benchmarks/bench_groups.py
	$(BIN)/python benchmarks/bench_batch.py

clean: ## remove results/ and caches (keeps .venv and data/)
	rm -rf results .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

readme: $(STAMP) ## refresh the README's results section from results/sparks-2020 (after make run)
	$(BIN)/python -m raidstudy.report.readme results/sparks-2020
