"""Memory discipline at scale: one full replicate (fit, exact LOO for every point, IF, NS, TRAK)
at n = 20000, p = 5000 (logistic, lam = 0.1, kappa = 0.25, M = 1, 10 test points) under the
default exact-LOO memory budget (512 MiB per chunk). Reports wall time per stage and the peak
resident memory of the process (the design alone, X, is 800 MB). Writes
benchmarks/results/bench_large.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import jax

from sims.engine.data import make_data
from sims.engine.estimators import if_ns_influence, trak_influence
from sims.engine.fit import check_fit, hessian_inverse, newton_fit
from sims.engine.loo import chunk_size_for, exact_loo
from theory import enable_float64  # noqa: E402

enable_float64()   # the kernels below are called directly

RESULTS = Path(__file__).parent / "results"


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--p", type=int, default=5000)
    ap.add_argument("--memory-mb", type=int, default=512)
    args = ap.parse_args(argv)
    n, p, lam = args.n, args.p, 0.1
    stages = {}

    def stage(name, fn):
        t0 = time.perf_counter()
        out = fn()
        jax.block_until_ready(out) if not hasattr(out, "values") else None
        stages[name] = {"seconds": time.perf_counter() - t0, "peak_mb_so_far": peak_mb()}
        print(f"  {name:<8s} {stages[name]['seconds']:8.1f} s   peak RSS so far {stages[name]['peak_mb_so_far']:8.0f} MB",
              flush=True)
        return out

    print(f"one replicate at n = {n}, p = {p} (chunk {chunk_size_for(n, p, 10, args.memory_mb * 2**20)} points):")
    d = stage("data", lambda: make_data(jax.random.PRNGKey(0), family="logistic", n=n, p=p, n_test=10,
                                        gamma=1.0, sigma=0.0))
    fit = stage("fit", lambda: newton_fit(d.X, d.y, lam, family="logistic"))
    check_fit(fit, d.X, d.y, lam, "logistic")
    A = stage("inverse", lambda: hessian_inverse(d.X, fit.w, lam))
    XA = stage("XA", lambda: d.X @ A)
    loo = stage("loo", lambda: exact_loo("logistic", d.X, d.y, d.X0, fit, A, lam, XA=XA,
                                         memory_budget=args.memory_mb * 2**20))
    stage("if_ns", lambda: if_ns_influence(d.X, d.X0, fit.g, fit.w, A, XA))
    stage("trak", lambda: trak_influence(jax.random.PRNGKey(1), d.X, d.X0, fit.g, 0.0, k=p // 4, n_proj=1,
                                         projection="gaussian"))
    out = {"n": n, "p": p, "memory_budget_mb": args.memory_mb, "stages": stages,
           "total_s": sum(s["seconds"] for s in stages.values()), "peak_rss_mb": peak_mb(),
           "loo_chord_steps_mean": float(loo.n_iter.mean()), "device": jax.devices()[0].platform}
    print(f"total {out['total_s']:.0f} s, peak resident memory {out['peak_rss_mb']:.0f} MB, "
          f"{out['loo_chord_steps_mean']:.2f} chord steps per LOO point")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_large.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
