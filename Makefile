# trak-sim: theory and simulation of TRAK data attribution in the proportional regime.
# Every target bootstraps .venv (Python 3.11 + make is all a fresh machine needs).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test
JOBS   ?= 2

.PHONY: help install test validate bench bench-cold bench-gpu demo figures figures-paper sweep clean

help:
	@echo "make test        fast test suite (creates .venv, installs .[test])"
	@echo "make figures     regenerate every figure (quick preset, CPU, ~3 min from scratch on 2 cores)"
	@echo "make figures-paper  the figures at large p (meant for a GPU)"
	@echo "make sweep SPEC=figures/specs/x.toml [PRESET=quick]   run one sweep (cached, resumable)"
	@echo "make demo        one end-to-end simulation, printed as a table"
	@echo "make validate    slow theory-vs-simulation checks at larger p"
	@echo "make bench       performance benchmarks (ratios, see benchmarks/README.md)"
	@echo "make bench-cold  command-line cold start against a bare JAX start"
	@echo "make bench-gpu   benchmarks + figures-paper on an accelerator, time-bounded (benchmarks/gpu.sh)"
	@echo "make clean       remove .venv and caches"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n $(JOBS)

validate: $(STAMP)
	@# optional extra, best effort: without it tests/test_ray.py is skipped with its reason
	-$(BIN)/python -m pip install --quiet 'ray>=2.9' || echo "ray not installed: the Ray executor test will be skipped"
	$(BIN)/python -m pytest -q -m slow -s

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_theory.py
	$(BIN)/python benchmarks/bench_loo.py
	$(BIN)/python benchmarks/bench_sweep.py
	$(BIN)/python benchmarks/bench_scaling.py
	$(BIN)/python benchmarks/bench_cold.py

bench-cold: $(STAMP)
	$(BIN)/python benchmarks/bench_cold.py --cache-off --replicate

# No .venv dependency: the accelerator machine may have no network; the script picks a Python whose
# JAX sees the accelerator and runs the packages from this checkout.
bench-gpu:
	bash benchmarks/gpu.sh

figures: $(STAMP)
	$(BIN)/trak-sim figures --preset quick --jobs $(JOBS)

figures-paper: $(STAMP)
	$(BIN)/trak-sim figures --preset paper

sweep: $(STAMP)
	@test -n "$(SPEC)" || { echo "usage: make sweep SPEC=figures/specs/<name>.toml [PRESET=quick]"; exit 2; }
	$(BIN)/trak-sim sweep $(SPEC) $(if $(PRESET),--preset $(PRESET),)

demo: $(STAMP)
	$(BIN)/trak-sim simulate --family logistic --p 200 --delta 2 --kappa 0.5 --lam 0.1 --n-test 20 --reps 2

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
