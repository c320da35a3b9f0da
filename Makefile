# Two commands do all set-up on a fresh machine:
#   make run    installs the environment if needed, then runs the main job (nbs/run_loop.ipynb -p filter lsf: ACU-LSF on digits)
#   make test   installs the environment if needed, then runs the whole test suite (what .ci/run calls)
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
ARGS   ?=
OUT    ?= runs/run_loop.ipynb
MAIN   ?= -p filter lsf

.PHONY: install run compare lab outputs test export-check nbdev-test pytest slow bench clean-nbs

$(VENV)/.installed: settings.ini setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: install
	mkdir -p $(dir $(OUT))
	$(BIN)/papermill nbs/run_loop.ipynb $(OUT) $(MAIN) $(ARGS) --log-output --no-progress-bar

# the method x seed matrix (digits, 11 methods x 3 seeds by default; finished cells are never recomputed)
compare: install
	mkdir -p runs
	$(BIN)/papermill nbs/compare.ipynb runs/compare.ipynb $(ARGS) --log-output --no-progress-bar

# JupyterLab on the notebooks (every chapter keeps its outputs; experiments are papermill-parameterised)
lab: install
	$(BIN)/jupyter lab --notebook-dir=nbs

test: install export-check nbdev-test pytest

# CI fails if nbdev_export would change scollapse/ (notebooks and package out of sync)
export-check: install
	@rm -rf /tmp/scollapse-export-check && cp -r scollapse /tmp/scollapse-export-check
	$(BIN)/nbdev_export
	@if ! diff -r -q -x __pycache__ /tmp/scollapse-export-check scollapse; then \
	  echo "scollapse/ was out of sync with nbs/: run nbdev_export and commit both"; exit 1; fi

nbdev-test: install
	$(BIN)/nbdev_test --n_workers 2

pytest: install
	$(BIN)/pytest -q tests

slow: install
	$(BIN)/pytest -q -m slow tests

# speed figures (printed, never asserted): the main job + raw UNet throughput, and the entropy selectors
bench: install
	mkdir -p runs
	$(BIN)/papermill nbs/benchmark.ipynb runs/benchmark.ipynb --log-output
	$(BIN)/python tests/bench_entropy.py

# re-execute the chapter notebooks (nbs/00_*..14_*) in place, so a reader sees their plots and numbers; each runs
# its subject at tiny size (under about a minute); nbdev_clean then drops execution counts and metadata, not outputs
outputs: install
	for nb in nbs/[01]*.ipynb; do echo $$nb; $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=900 $$nb || exit 1; done
	$(BIN)/nbdev_clean

clean-nbs: install
	$(BIN)/nbdev_clean
