"""All-n exact network LOO (sims.network.loo) against n warm-started scipy L-BFGS-B retrainings.

Both start at theta_hat and stop at the same criterion ||grad F_{-i}|| <= tol * s_i (the suite's,
see sims/network/loo.py); L-BFGS-B runs `--timed` points and is extrapolated to n. Side by side
in one run; prints and writes benchmarks/results/bench_network.json.

    .venv/bin/python benchmarks/bench_network.py --hidden 4 --n-train 150 --tol 1e-8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

from theory import enable_float64
from sims.network.data import split
from sims.network.estimators import inverse
from sims.network.loo import _scales, network_loo
from sims.network.model import Shapes, features, init_params, logistic_parts, make_model
from sims.network.train import dense_hessian, train, value_grad


enable_float64()   # the kernels below are called directly


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=4)
    ap.add_argument("--n-train", type=int, default=150)
    ap.add_argument("--lam", type=float, default=4.0)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--timed", type=int, default=10)
    args = ap.parse_args()
    n = args.n_train
    data = split("digits", n, 5, jax.random.PRNGKey(0))
    sh = Shapes(data.X.shape[1], args.hidden)
    X, y, X0 = jnp.asarray(data.X), jnp.asarray(data.y), jnp.asarray(data.X0)
    theta = jnp.asarray(train(sh, init_params(jax.random.PRNGKey(1), sh), X, y, args.lam).theta)
    _, f_batch = make_model(sh)
    _, g, w = logistic_parts(y, f_batch(theta, X))
    Phi = features(sh, theta, X)
    A = inverse(dense_hessian(sh, theta, X, y, args.lam, jnp.ones(n)))
    network_loo(sh, theta, X, y, X0, args.lam, A, Phi, g, w, tol=args.tol)        # compile
    t = time.perf_counter()
    loo = network_loo(sh, theta, X, y, X0, args.lam, A, Phi, g, w, tol=args.tol)
    t_suite = time.perf_counter() - t
    s, floor = _scales(sh, Phi, g, theta, args.lam)
    targets = np.maximum(args.tol * np.asarray(s), float(floor))
    f0 = np.asarray(f_batch(theta, X0))
    pts = np.random.default_rng(0).choice(n, args.timed, replace=False)
    value_grad(sh, theta, X, y, args.lam, jnp.ones(n))                               # compile
    diffs, short, t = [], 0, time.perf_counter()
    for i in pts:
        wts = jnp.asarray((np.arange(n) != i).astype(float))

        def fun(th):
            F, G = value_grad(sh, jnp.asarray(th), X, y, args.lam, wts)
            return float(F), np.asarray(G)

        res = minimize(fun, np.asarray(theta), jac=True, method="L-BFGS-B",
                       options={"maxiter": 20000, "gtol": targets[i] / np.sqrt(sh.p), "ftol": 0.0, "maxcor": 20})
        short += int(np.linalg.norm(fun(res.x)[1]) > targets[i])
        diffs.append(float(np.max(np.abs((f0 - np.asarray(f_batch(jnp.asarray(res.x), X0))) - loo.values[:, i]))))
    t_lbfgs = (time.perf_counter() - t) / args.timed * n
    out = {"hidden": args.hidden, "p": sh.p, "n": n, "tol": args.tol, "suite_s": t_suite,
           "lbfgs_extrapolated_s": t_lbfgs, "timed": args.timed, "ratio": t_lbfgs / t_suite,
           "lbfgs_short_of_tol": short, "max_abs_diff": max(diffs), "fallback_points": int(loo.fallback.sum()),
           "newton_steps_mean": float(loo.iters.mean())}
    print(json.dumps(out, indent=2))
    Path(__file__).parent.joinpath("results").mkdir(exist_ok=True)
    Path(__file__).parent.joinpath("results", "bench_network.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
