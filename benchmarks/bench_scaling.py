"""Cost growth of each kernel: wall time and peak memory over doubling ladders, fitted exponents.

Two ladders (logistic ridge, lam = 0.1, gamma = 1, T = 20 test points, TRAK with kappa = 0.25):
  "n"  n doubles at fixed p        expected exponents in n: exact LOO 2 (n^2 p), NS/IF 1 (n p^2),
                                   TRAK 1 (n p k)
  "p"  p doubles with n = 2p       expected exponents in p: 3 for every kernel (n^2 p, p^3, n p k)
Kernels: fit (Newton), exact LOO (all n points), NS+IF (H^{-1}, X H^{-1}, the two T x n
matrices), TRAK with M = 1 and M = 4. Each (size, kernel) runs in a fresh process so that its peak
resident memory (ru_maxrss, minus the process baseline after importing JAX and drawing the data)
belongs to that kernel; the time is the best of --repeat runs after a compiling warm-up. The
exponent is the least-squares log-log slope over the ladder, and the slope of the last doubling
(small sizes are dominated by fixed overheads, so the asymptotic exponent shows at the top). Writes benchmarks/results/bench_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
KERNELS = ("fit", "loo", "ns_if", "trak_m1", "trak_m4")
EXPECTED = {"n": {"fit": 1, "loo": 2, "ns_if": 1, "trak_m1": 1, "trak_m4": 1},
            "p": {"fit": 3, "loo": 3, "ns_if": 3, "trak_m1": 3, "trak_m4": 3}}

CHILD = r"""
import json, resource, sys, time
import jax, jax.numpy as jnp, numpy as np
from sims.engine.data import make_data
from sims.engine.fit import newton_fit, hessian_inverse
from sims.engine.loo import exact_loo
from sims.engine.estimators import if_ns_influence, trak_influence
from theory import enable_float64  # noqa: E402

enable_float64()   # the kernels below are called directly
kernel, n, p, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
lam, k = 0.1, max(1, p // 4)
d = make_data(jax.random.PRNGKey(0), family="logistic", n=n, p=p, n_test=20, gamma=1.0, sigma=0.0)
fit = newton_fit(d.X, d.y, lam, family="logistic"); fit.beta.block_until_ready()
need_A = kernel in ("loo", "ns_if")
if need_A:
    A = hessian_inverse(d.X, fit.w, lam); XA = (d.X @ A).block_until_ready()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def run():
    if kernel == "fit":
        return newton_fit(d.X, d.y, lam, family="logistic").beta.block_until_ready()
    if kernel == "loo":
        return exact_loo("logistic", d.X, d.y, d.X0, fit, A, lam, XA=XA).values
    if kernel == "ns_if":
        A2 = hessian_inverse(d.X, fit.w, lam)
        out = if_ns_influence(d.X, d.X0, fit.g, fit.w, A2, d.X @ A2)
        return out[1].block_until_ready()
    M = 1 if kernel == "trak_m1" else 4
    return trak_influence(jax.random.PRNGKey(1), d.X, d.X0, fit.g, 0.0, k=k, n_proj=M,
                          projection="gaussian").block_until_ready()
run()
best = min((lambda t0: (run(), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(repeat))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"time_s": best, "peak_mb": max(peak - base, 0) / 1024, "baseline_mb": base / 1024}))
"""


def measure(kernel, n, p, repeat):
    out = subprocess.run([sys.executable, "-c", CHILD, kernel, str(n), str(p), str(repeat)],
                         capture_output=True, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def slope(x, y):
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p-fixed", type=int, default=500, help="p of the n ladder")
    ap.add_argument("--n-ladder", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    ap.add_argument("--p-ladder", type=int, nargs="+", default=[125, 250, 500, 1000])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    ladders = {"n": [(n, args.p_fixed) for n in args.n_ladder], "p": [(2 * p, p) for p in args.p_ladder]}
    out = {}
    for name, sizes in ladders.items():
        rows = []
        for n, p in sizes:
            row = {"n": n, "p": p}
            for kernel in KERNELS:
                row[kernel] = measure(kernel, n, p, args.repeat)
            rows.append(row)
            print(f"[{name} ladder] n={n:5d} p={p:5d}  " + "  ".join(
                f"{k} {row[k]['time_s']:7.3f}s {row[k]['peak_mb']:6.0f}MB" for k in KERNELS), flush=True)
        x = [r[name] for r in rows]
        fitted = {k: slope(x, [r[k]["time_s"] for r in rows]) for k in KERNELS}
        mem = {k: slope(x, [max(r[k]["peak_mb"], 1e-3) for r in rows]) for k in KERNELS}
        last = {k: slope(x[-2:], [r[k]["time_s"] for r in rows[-2:]]) for k in KERNELS}
        out[name] = {"rows": rows, "time_exponent": fitted, "time_exponent_last_doubling": last,
                     "memory_exponent": mem, "expected_time_exponent": EXPECTED[name]}
        print(f"[{name} ladder] time exponents, whole ladder / last doubling (expected): " + "  ".join(
            f"{k} {fitted[k]:.2f} / {last[k]:.2f} ({EXPECTED[name][k]})" for k in KERNELS))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_scaling.json").write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
