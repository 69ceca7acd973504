# stairbot: one command to set up and train, one to set up and test (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# Extra pip arguments for the CPU torch install, e.g. on a machine without a local CPU wheel:
#   make test TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install install-dev train test test-fast lint format typecheck bench clean gui-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A CPU build of torch goes in before stable-baselines3 can pull the CUDA build (several GB) where
# the machine has no NVIDIA GPU; with one, SB3's own torch requirement brings the CUDA build.
$(VENV)/.torch: | $(BIN)/python
	@if command -v nvidia-smi >/dev/null 2>&1; then \
		echo "NVIDIA GPU found: torch comes with stable-baselines3"; \
	else \
		echo "no NVIDIA GPU: installing CPU torch==$(TORCH_VERSION)"; \
		$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)" $(TORCH_PIP_ARGS); \
	fi
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.torch
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The main job on its default configuration: train the default recipe, then evaluate its best model.
RECIPE ?= ppo_stairs
RUN := runs/$(RECIPE)-$(shell date +%Y%m%d-%H%M%S)
train: install
	$(BIN)/stairbot train $(RECIPE) --out $(RUN)
	$(BIN)/stairbot eval $(RUN) --episodes 20 --json $(RUN)/eval.json
	@echo "results: $(RUN) (eval.json, episodes.csv, evaluations.csv; tensorboard --logdir $(RUN)/tb)"

lint: install-dev
	$(BIN)/ruff check stairbot tests notebooks
	$(BIN)/ruff format --check stairbot tests notebooks

format: install-dev
	$(BIN)/ruff format stairbot tests notebooks
	$(BIN)/ruff check --fix stairbot tests notebooks

typecheck: install-dev
	$(BIN)/mypy

# The `gui` tests run PyBullet's GUI (`stairbot play`) under Xvfb, drawn by Mesa's software OpenGL
# (xvfb pulls libgl1 -> libglx-mesa0 -> libgl1-mesa-dri; named here for what the GUI needs). Installed
# when Xvfb is missing and we are root with apt-get (CI); otherwise a note, and those tests skip.
GUI_APT_PACKAGES := xvfb libglx-mesa0 libgl1-mesa-dri
gui-deps:
	@if command -v Xvfb >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "note: Xvfb not found and not root with apt-get: the gui tests will be skipped" \
			"(install: apt-get install $(GUI_APT_PACKAGES))"; \
	else \
		echo "installing $(GUI_APT_PACKAGES) for the gui tests"; \
		apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$(GUI_APT_PACKAGES) >/dev/null; \
	fi

# Lint, type-check and the whole test suite, slow and gui tests included (CI runs exactly this).
test: lint typecheck gui-deps
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-fast: install-dev
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

bench: install
	$(BIN)/stairbot bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
