# Two commands do everything from a fresh clone: `make train` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: train test lint bench notebooks clean

$(STAMP): pyproject.toml
	@echo "Installing jaxnn and its dependencies into $(VENV) (a few minutes the first time)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

train: $(STAMP)  ## the book's chapter-1 network on the embedded MNIST (offline)
	$(BIN)/jaxnn train $(ARGS)

# Tests run in parallel worker processes (pytest-xdist), one per core; JOBS=0 runs them serially.
# The 15 slowest tests are listed at the end, to keep the suite's time in view.
JOBS ?= auto
PYTEST_ARGS ?= --durations=15
test: $(STAMP)  ## the whole suite, on CPU
	$(BIN)/python -m pytest -n $(JOBS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check jaxnn manual_grad tests benchmarks scripts

# Every CPU benchmark, with the settings of the tables in benchmarks/README.md (414 s in all
# on 2 cores, 2026-11-23, reinstall included, before guard_cpu.py was added: it took 40 s
# alone; eval_chunk_cpu.py, added 2026-11-25, took 178 s, softmax_rule.py 16 s and
# monitor_cpu.py 55 s; seeds.py, added 2026-11-25, 55 s); each prints its table and
# writes JSON under benchmarks/results/.
bench: $(STAMP)  ## CPU benchmarks; tables go to benchmarks/README.md by hand
	$(BIN)/python benchmarks/epoch_cpu.py
	$(BIN)/python benchmarks/manual_vs_autodiff.py
	$(BIN)/python benchmarks/cnn_throughput.py --torch-threads 1
	$(BIN)/python benchmarks/conv_in_scan_cpu.py
	$(BIN)/python benchmarks/guard_cpu.py --rounds 8
	$(BIN)/python benchmarks/eval_chunk_cpu.py
	$(BIN)/python benchmarks/monitor_cpu.py --rounds 7
	$(BIN)/python benchmarks/softmax_rule.py
	$(BIN)/python benchmarks/seeds.py
	$(BIN)/python benchmarks/parallel_cpu.py --devices 8 --train-size 10000 --repeats 5
	JAXNN=$(BIN)/jaxnn bash benchmarks/cache_cpu.sh
	JAXNN=$(BIN)/jaxnn bash benchmarks/multiprocess_cpu.sh 3

NOTEBOOKS_OUT ?= $(or $(TMPDIR),/tmp)/jaxnn-notebooks
notebooks: $(STAMP)  ## run every notebook in full mode; executed copies go to $(NOTEBOOKS_OUT)
	$(BIN)/python notebooks/build.py --check
	$(BIN)/python notebooks/build.py --execute $(NOTEBOOKS_OUT)

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
