"""Cold start from the command line, side by side with a bare JAX start.

Each case is a fresh process, timed from spawn to exit; the cases run interleaved (round-robin,
--rounds rounds) so that they see the same machine state, and the medians are compared:

  bare       python -c "import jax; x64; one jnp op": the least any JAX command can cost
  predict    trak-sim predict            (default model)
  simulate   trak-sim simulate --p 200   (default model: logistic, n = 400, 2 replicates)

A "second cold call" is measured: one untimed call of each command first fills the persistent
compilation cache (a private folder, $TRAK_SIM_JAX_CACHE, emptied at the start), and every
timed call is a new process that finds it filled. --cache-off adds the same commands with the
cache disabled (TRAK_SIM_JAX_CACHE=0), i.e. the cost before the cache, on fewer rounds.
Targets (issue 16): predict <= 1.5x bare, simulate --p 200 <= 2.5x bare.

--replicate adds the main job: one logistic replicate at n = 2000, p = 1000 (fit, exact LOO of
all n points at the default tolerance 1e-10, IF, NS, TRAK, metrics) as `trak-sim simulate
--p 1000 --delta 2 --reps 1` in a fresh process (cache filled) and warm in this process, against
n warm-started scipy trust-ncg refits (analytic gradient and Hessian-vector products, from
beta_hat, gradient tolerance 1e-6 relative as in bench_loo.py; --scipy-sample refits timed,
scaled by n). Targets: >= 20x (fresh process) and >= 50x (warm).

Writes benchmarks/results/bench_cold.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
BIN = Path(sys.executable).parent
BARE = ("import jax; jax.config.update('jax_enable_x64', True); import jax.numpy as jnp; "
        "float(jnp.ones(3, jnp.float64).sum())")
CLI = [str(BIN / "trak-sim")] if (BIN / "trak-sim").exists() else [sys.executable, "-m", "sims.cli"]
CASES = {
    "bare": [sys.executable, "-c", BARE],
    "predict": CLI + ["predict"],
    "simulate": CLI + ["simulate", "--p", "200", "--no-progress"],
}
REPLICATE = CLI + ["simulate", "--family", "logistic", "--p", "1000", "--delta", "2", "--reps", "1",
                   "--no-progress"]


def timed(cmd, env) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def scipy_refits(sample: int, seed: int = 0) -> dict:
    """n warm-started trust-ncg refits of the replicate's data set, `sample` timed, scaled to n."""
    import jax
    import numpy as np
    from scipy.optimize import minimize

    import sims  # noqa: F401  (float64)
    from sims.engine.data import make_data
    from sims.engine.fit import newton_fit

    n, p, lam, tol = 2000, 1000, 0.1, 1e-6
    d = make_data(jax.random.PRNGKey(seed), family="logistic", n=n, p=p, n_test=20, gamma=1.0, sigma=0.0)
    fit = newton_fit(d.X, d.y, lam, family="logistic")
    X, y, beta, g = (np.asarray(a) for a in (d.X, d.y, fit.beta, fit.g))
    gscale = np.sqrt(np.mean(g * g))
    idx = np.random.default_rng(seed).permutation(n)[:sample]
    t0 = time.perf_counter()
    for i in idx:
        keep = np.arange(n) != i
        Xi, yi = X[keep], y[keep]

        def f_and_grad(b):
            eta = Xi @ b
            return (np.sum(np.logaddexp(0.0, eta) - yi * eta) + 0.5 * lam * b @ b,
                    Xi.T @ (1.0 / (1.0 + np.exp(-eta)) - yi) + lam * b)

        def hessp(b, v):
            mu = 1.0 / (1.0 + np.exp(-(Xi @ b)))
            return Xi.T @ (mu * (1.0 - mu) * (Xi @ v)) + lam * v

        minimize(f_and_grad, beta, jac=True, hessp=hessp, method="trust-ncg",
                 options=dict(gtol=tol * (np.linalg.norm(X[i]) * abs(g[i]) + 1e-4 * gscale), maxiter=1000))
    return dict(seconds_extrapolated=(time.perf_counter() - t0) * n / sample, refits_timed=sample, tol=tol)


def warm_replicate(repeat: int) -> float:
    import sims

    kw = dict(family="logistic", p=1000, delta=2.0, reps=1, n_test=20, seed=0, progress=False)
    sims.simulate(**kw)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sims.simulate(**kw)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="timed calls of each case, interleaved")
    ap.add_argument("--cache-off", action="store_true", help="also time the commands without the cache")
    ap.add_argument("--cache-off-rounds", type=int, default=2)
    ap.add_argument("--replicate", action="store_true", help="also the n = 2000, p = 1000 replicate vs scipy")
    ap.add_argument("--replicate-rounds", type=int, default=3)
    ap.add_argument("--scipy-sample", type=int, default=20)
    args = ap.parse_args(argv)

    cache = Path(tempfile.mkdtemp(prefix="trak-sim-bench-cold-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["TRAK_SIM_JAX_CACHE"] = str(cache)
    off = {**env, "TRAK_SIM_JAX_CACHE": "0"}
    cases = dict(CASES)
    runs = {name: (cmd, env, args.rounds) for name, cmd in cases.items()}
    if args.cache_off:
        runs.update({f"{name}_cache_off": (cmd, off, args.cache_off_rounds)
                     for name, cmd in cases.items() if name != "bare"})
    if args.replicate:
        runs["replicate_n2000_p1000"] = (REPLICATE, env, args.replicate_rounds)
    try:
        first = {name: timed(cmd, e) for name, (cmd, e, _) in runs.items()}     # fills the cache
        times = {name: [] for name in runs}
        for r in range(max(k for _, _, k in runs.values())):
            for name, (cmd, e, k) in runs.items():
                if r < k:
                    times[name].append(timed(cmd, e))
            print(f"round {r + 1}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items() if len(t) > r),
                  flush=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    med = {name: statistics.median(t) for name, t in times.items()}
    out = dict(rounds=args.rounds, first_call_s=first, times_s=times, median_s=med,
               ratio_to_bare={n: med[n] / med["bare"] for n in med if n != "bare"},
               cpu_count=os.cpu_count(), loadavg_at_end=os.getloadavg())
    if args.replicate:
        out["replicate_warm_s"] = warm_replicate(args.replicate_rounds)
        out["scipy_trust_ncg"] = scipy_refits(args.scipy_sample)
        s = out["scipy_trust_ncg"]["seconds_extrapolated"]
        out["replicate_speedup"] = dict(fresh_process=s / med["replicate_n2000_p1000"], warm=s / out["replicate_warm_s"])

    import jax
    out["jax"] = jax.__version__
    print(f"cold start, medians of {args.rounds} interleaved fresh processes ({os.cpu_count()} cores, "
          f"load average at the end {os.getloadavg()[0]:.1f}):")
    for name, m in med.items():
        ratio = "" if name == "bare" else f"  {m / med['bare']:.2f}x bare"
        print(f"  {name:<24s} {m:6.2f} s  (first call {first[name]:.2f} s){ratio}")
    print("  targets: predict <= 1.5x bare, simulate --p 200 <= 2.5x bare")
    if args.replicate:
        sp = out["replicate_speedup"]
        print(f"  replicate n = 2000, p = 1000: fresh process {med['replicate_n2000_p1000']:.2f} s, warm "
              f"{out['replicate_warm_s']:.2f} s; scipy trust-ncg refits {s:.1f} s -> {sp['fresh_process']:.1f}x "
              f"(target >= 20x), {sp['warm']:.1f}x (target >= 50x)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_cold.json").write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
