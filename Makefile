# make repro | make test | make lab  (see README.md)
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)
# Lab opens the jupytext .py notebooks as notebooks (settings kept in the repo).
export JUPYTERLAB_SETTINGS_DIR := $(abspath .jupyter/lab/user-settings)

.PHONY: install repro real test test-slow test-all lab lint lock bench clean-venv kaggle-release kaggle-submit \
  exps dag plots-page

# dvc plots show's offline template (.dvc/config plots.html_template) is built too where npm is.
PLOTS_PAGE := web/plots/dvc_plots.html
install: $(STAMP) $(if $(shell command -v npm),$(PLOTS_PAGE))

# uv installs the pinned wheels in parallel (pip: one at a time on one core, 3.5 min of a fresh
# make repro; uv about 1 min, docs/tests.md), from the sources pip is configured with
# (scripts/uv_sources.py); pip installs them where uv fails.
# Bytecode: with PYTHONDONTWRITEBYTECODE set, as on these machines, imports never write .pyc
# files, so every stage would compile torch again; compileall -j 0 does it once on every core
# (a few files some packages ship do not compile, and are left to import as they are).
UV_PIP = $(BIN)/uv pip install -q --python $(BIN)/python --index-strategy unsafe-best-match \
  $(shell $(PYTHON) scripts/uv_sources.py)
$(STAMP): requirements.txt requirements-nodeps.txt constraints.txt pyproject.toml scripts/uv_sources.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt uv
	$(UV_PIP) -r requirements.txt -c constraints.txt \
	  || $(BIN)/python -m pip install -q --no-compile -r requirements.txt -c constraints.txt
	$(UV_PIP) --no-deps -r requirements-nodeps.txt -e . \
	  || $(BIN)/python -m pip install -q --no-compile --no-deps -r requirements-nodeps.txt -e .
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null || true
	$(BIN)/python -m dfdc.lab install >/dev/null
	@touch $(STAMP)

# The vega builds web/plots/package-lock.json pins, inlined into the page dvc plots show fills
# (scripts/plots_page.py: npm ci, then the template; docs/experiments.md).
$(PLOTS_PAGE): web/plots/package-lock.json web/plots/template.html scripts/plots_page.py | $(STAMP)
	$(BIN)/python scripts/plots_page.py

plots-page: $(PLOTS_PAGE)

repro: install
	dvc repro

# The real recipe on a real dataset, as one DVC experiment: params.yaml's 2 folds are the
# sample's (make repro's budget); a real dataset trains 4 identity folds, the setting every
# real-data figure in docs/real-data.md and docs/robustness.md was measured with.
SOURCE ?= ffpp
FOLDS ?= 4
# The real recipe's ensemble is the frame run alone: the sequence run (embed oof) earned weight
# on the shared FF++ clips but gained no more than the seed-to-seed spread (docs/real-data.md).
# SEQUENCE=1 trains it on every fold, embedding each video out of fold, and blends it in.
# It scores hundreds of videos on the CPU (test set, evaluate, robustness): on OpenVINO, whose
# model time is half ONNX Runtime's at the same probabilities (docs/inference.md).
SEQUENCE ?= 0
SEQUENCE_FOLDS = $(if $(filter 1,$(SEQUENCE)),[$(shell seq -s, 0 $$(($(FOLDS)-1)))],[])
REAL_RUNS = $(if $(filter 1,$(SEQUENCE)),[baseline$(comma)lstm],[baseline])
comma := ,
real: install
	@test -n "$(DATA)" || { echo "usage: make real DATA=/path/to/dataset [SOURCE=ffpp|celebdf|local] [FOLDS=4] [SEQUENCE=1]"; exit 2; }
	dvc exp run -S data.source=$(SOURCE) -S data.local_path=$(abspath $(DATA)) \
	  -S cv.n_folds=$(FOLDS) -S 'cv.folds=[$(shell seq -s, 0 $$(($(FOLDS)-1)))]' \
	  -S 'sequence.folds=$(SEQUENCE_FOLDS)' -S 'ensemble.runs=$(REAL_RUNS)' \
	  -S sequence.sequence.embed=oof -S inference.runtime=openvino

# The experiments beside their baseline in 160 columns (docs/experiments.md): the headline
# metrics and the params that changed, without the dependencies' hashes (every column whose
# name is a path: dvc.yaml's deps). DVC's own flags.
EXPS_DROP := .*/|models$$|notebooks$$|pyproject\.toml$$
exps:
	dvc exp show --only-changed --drop '$(EXPS_DROP)'

# docs/pipeline.md's picture: dvc dag --md (mermaid) of dvc.yaml (tests/project/test_views.py).
dag:
	python scripts/pipeline_doc.py

# The suite CI runs (under 15 minutes on 2 cores); the three tests marked slow (the whole sample
# pipeline trained to a log-loss bound, dvc repro in fresh clones, the committed params.yaml
# rebuilt against the committed data and metrics) are test-slow; test-all
# runs both.
PYTEST_ARGS ?=
test: install lint
	python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: install
	python -m pytest -m slow $(PYTEST_ARGS)

test-all: install lint
	python -m pytest $(PYTEST_ARGS)

lint: install
	ruff check src tests benchmarks notebooks scripts
	ruff format --check src tests benchmarks notebooks scripts

# Re-resolve requirements.txt from scratch and pin the result in constraints.txt.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q -r requirements.txt
	.venv-lock/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt
	{ echo "# The whole resolved environment, pinned (pip freeze of a 'make install' venv); 'make lock' renews it."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable; } > constraints.txt
	rm -rf .venv-lock

lab: install
	jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root)

# Publish the packaged kernel and its datasets (docs/kaggle.md).
kaggle-release: install
	dvc repro package
	dfdc kaggle release -m "$(NOTES)"

kaggle-submit: install
	@test -n "$(KERNEL)" || { echo "usage: make kaggle-submit KERNEL=<owner>/<slug> VERSION=<n>"; exit 2; }
	dfdc kaggle submit -k $(KERNEL) $(if $(VERSION),-v $(VERSION)) -m "$(NOTES)"

bench: install
	python benchmarks/faces.py

clean-venv:
	rm -rf $(VENV)
