# Two commands do all set-up on a fresh machine:
#   make run    installs the environment if needed, then runs the main job (nbs/run_loop.ipynb -p filter lsf: ACU-LSF on digits)
#   make test   installs the environment if needed, then runs the whole test suite (what .ci/run calls)
# Fashion-MNIST is the third:
#   make data   Debian/Ubuntu: apt-get install -y dataset-fashion-mnist; elsewhere it says which torchvision raw files to
#               put where (nothing happens if the files are already there)
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
ARGS   ?=
OUT    ?= runs/run_loop.ipynb
MAIN   ?= -p filter lsf

.PHONY: install run data compare lab outputs test export-check nbdev-test pytest slow bench clean-nbs results-pages

# uv (from PyPI, into the venv) installs the package and its dependencies (pinned in settings.ini) from its cache in
# seconds where pip takes ~1.5 min to unpack ~5 GB of torch; --compile-bytecode writes the .pyc files up front (with
# PYTHONDONTWRITEBYTECODE set, every process would otherwise compile torch again). Without uv, pip does the same.
$(VENV)/.installed: settings.ini setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	if $(PY) -m pip install -q uv; then $(BIN)/uv pip install -q --compile-bytecode --python $(PY) -e ".[dev]"; \
	else echo "uv not available: installing with pip"; $(PY) -m pip install -q --upgrade pip && \
	  $(PY) -m pip install -q -e ".[dev]"; fi
	touch $@

install: $(VENV)/.installed

run: install
	mkdir -p $(dir $(OUT))
	$(BIN)/papermill nbs/run_loop.ipynb $(OUT) $(MAIN) $(ARGS) --log-output --no-progress-bar

# Fashion-MNIST where scollapse.data looks for it: the Debian package's files, or torchvision's raw files under the data
# root ($SCOLLAPSE_DATA, else ~/.cache/scollapse/data; `make data DATA_ROOT=...` for another)
FASHION_DEB   ?= /usr/share/datasets/fashion-mnist
DATA_ROOT     ?= $(or $(SCOLLAPSE_DATA),$(HOME)/.cache/scollapse/data)
FASHION_RAW   := $(DATA_ROOT)/FashionMNIST/raw
FASHION_FILES := train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte

data:
	@have() { for f in $(FASHION_FILES); do test -f "$$1/$$f$$2" || return 1; done; }; \
	how() { echo "Put torchvision's raw Fashion-MNIST files $(FASHION_FILES) (or the same names with .gz)"; \
	  echo "in $(FASHION_RAW)/ (torchvision.datasets.FashionMNIST('$(DATA_ROOT)', download=True) on a machine with"; \
	  echo "internet creates them), or install the Debian/Ubuntu package: apt-get install dataset-fashion-mnist"; }; \
	if have "$(FASHION_DEB)" .gz; then echo "Fashion-MNIST is already installed: $(FASHION_DEB)/ (dataset-fashion-mnist)"; \
	elif have "$(FASHION_RAW)" "" || have "$(FASHION_RAW)" .gz; then echo "Fashion-MNIST is already there: $(FASHION_RAW)/"; \
	elif ! command -v apt-get >/dev/null 2>&1; then echo "apt-get is not available here."; how; exit 1; \
	else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	  else echo "not root and no sudo: cannot run apt-get install dataset-fashion-mnist."; how; exit 1; fi; \
	  echo "running: $${SUDO:+sudo }apt-get install -y dataset-fashion-mnist"; \
	  $$SUDO apt-get install -y dataset-fashion-mnist || { $$SUDO apt-get update && $$SUDO apt-get install -y dataset-fashion-mnist; }; \
	  if have "$(FASHION_DEB)" .gz; then echo "Fashion-MNIST installed: $(FASHION_DEB)/"; \
	  else echo "apt-get did not install the Fashion-MNIST files in $(FASHION_DEB)/."; how; exit 1; fi; \
	fi

# the method x seed matrix (digits, 11 methods x 3 seeds by default; finished cells are never recomputed)
compare: install
	mkdir -p runs
	$(BIN)/papermill nbs/compare.ipynb runs/compare.ipynb $(ARGS) --log-output --no-progress-bar

# JupyterLab on the notebooks (every chapter keeps its outputs; experiments are papermill-parameterised)
lab: install
	$(BIN)/jupyter lab --notebook-dir=nbs

# the notebooks' tests and pytest side by side (a core is never idle while the other suite's last item runs); each
# one's output is printed whole when it ends, and `make test` fails if either fails
test: install export-check
	$(MAKE) --no-print-directory -j2 --output-sync=target nbdev-test pytest

# CI fails if nbdev_export would change scollapse/ (notebooks and package out of sync)
export-check: install
	@rm -rf /tmp/scollapse-export-check && cp -r scollapse /tmp/scollapse-export-check
	$(BIN)/nbdev_export
	@if ! diff -r -q -x __pycache__ /tmp/scollapse-export-check scollapse; then \
	  echo "scollapse/ was out of sync with nbs/: run nbdev_export and commit both"; exit 1; fi

# one torch thread per notebook worker, as pytest's (11_bench raises the count itself to check that a '1 thread'
# variant restores it)
nbdev-test: install
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2

# pytest-xdist workers, a test file per worker at a time (--dist loadfile: a module fixture is built once; loadgroup's
# xdist_group marks are ignored under pytest 9); both workers share one trained cache (judge, encoder, tiny
# generation 0: tests/conftest.py), built once under a lock. Files go out longest first (tests/conftest.py's
# LONGEST_FIRST; --no-loadscope-reorder keeps that order instead of xdist's most-tests-first)
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

pytest: install
	$(PYTEST) tests

slow: install
	$(PYTEST) -m slow tests

# the results pages, generated from the files in results/ (seconds): results/README.md, one README.md per dataset and
# protocol folder, and the README's marked summary blocks; tests/test_pages.py fails while a committed page differs
results-pages: install
	$(PY) -m scollapse.pages

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
