#!/usr/bin/env bash
# make bench-gpu: the benchmarks and the paper figures on an accelerator, every step time-bounded.
#
# Meant for a machine with a GPU (or TPU) and a Python whose JAX sees it; it needs no network and
# no install: the packages run from this checkout (PYTHONPATH). The Python is $PYTHON if set, else
# .venv/bin/python if its JAX has an accelerator, else python3. Without an accelerator it says so
# and exits 3 (nothing is run: the CPU numbers come from `make bench`).
#
#   BENCH_GPU_BUDGET  seconds for the whole script (default 540); each step gets at most its own
#                     limit and what is left of the budget, and is killed (SIGTERM, then SIGKILL)
#                     past it; a step that fails or times out does not stop the others
#   OUT               folder of the logs, the JSON results and the figures (default
#                     benchmarks/results/gpu); a summary line per step goes to OUT/summary.txt
#   STEPS             the steps to run, by name (default: all, in this order):
#                     env theory loo cold large figures
#   BENCH_GPU_ALLOW_CPU=1  run even without an accelerator (a dry run of the script itself)
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
BUDGET=${BENCH_GPU_BUDGET:-540}
OUT=${OUT:-$ROOT/benchmarks/results/gpu}
STEPS=${STEPS:-"env theory loo cold large figures"}
START=$(date +%s)
mkdir -p "$OUT"
: > "$OUT/summary.txt"
touch "$OUT/.started"

has_accelerator() {   # exit 0 when the python $1 imports jax with a non-CPU default backend
    "$1" -c 'import sys, jax; sys.exit(jax.default_backend() == "cpu")' >/dev/null 2>&1
}
if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -x .venv/bin/python ] && has_accelerator .venv/bin/python; then
    PY=.venv/bin/python
else
    PY=python3
    [ -x .venv/bin/python ] && [ "${BENCH_GPU_ALLOW_CPU:-0}" = 1 ] && PY=.venv/bin/python
fi
if ! has_accelerator "$PY" && [ "${BENCH_GPU_ALLOW_CPU:-0}" != 1 ]; then
    echo "bench-gpu: no accelerator visible to JAX from $PY; nothing run (CPU benchmarks: make bench)." | tee -a "$OUT/summary.txt"
    exit 3
fi

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export TRAK_SIM_JAX_CACHE="${TRAK_SIM_JAX_CACHE:-$OUT/jax-cache}"
export MPLBACKEND=Agg

# step NAME LIMIT_S COMMAND...: run with min(LIMIT_S, budget left), log to OUT/NAME.log
step() {
    local name=$1 limit=$2; shift 2
    case " $STEPS " in *" $name "*) ;; *) return 0 ;; esac
    local left=$(( BUDGET - ($(date +%s) - START) ))
    if [ "$left" -lt 20 ]; then
        echo "$name: skipped (budget spent)" | tee -a "$OUT/summary.txt"; return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    local t0=$(date +%s)
    timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    local what="ok"
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && what="timed out after ${limit} s"
    [ "$rc" -ne 0 ] && [ "$what" = "ok" ] && what="failed (exit $rc)"
    echo "$name: $what in $(( $(date +%s) - t0 )) s (log: $name.log)" | tee -a "$OUT/summary.txt"
    tail -n 12 "$OUT/$name.log"
}

step env 60 bash -c "nvidia-smi || true; '$PY' -c 'import jax; print(jax.__version__, jax.devices())'"
step theory 90 "$PY" benchmarks/bench_theory.py --repeat 3
step loo 150 "$PY" benchmarks/bench_loo.py --baseline-sample 4 --lbfgs-sample 1 --repeat 2
step cold 150 "$PY" benchmarks/bench_cold.py --rounds 3
step large 240 "$PY" benchmarks/bench_large.py
step figures 600 "$PY" -m sims.cli figures --preset paper --out "$OUT/figures" --results "$OUT/results" --no-progress

find benchmarks/results -maxdepth 1 -name '*.json' -newer "$OUT/.started" -exec cp {} "$OUT/" \; 2>/dev/null
echo "bench-gpu: done in $(( $(date +%s) - START )) s; results in $OUT" | tee -a "$OUT/summary.txt"
