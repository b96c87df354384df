"""Validation of `trak-sim plan` on the real datasets of the suite (sims/runs/real.py DATASETS).

For each dataset: hold out n_test rows as test points, plan on the rest (lam = 0.1 on the
standardized features, lam_T = 0, M = 2) for each metric at target 0.8 (or 0.9 x the ceiling when
0.8 is unreachable), then exact LOO versus TRAK at the recommended k on the same training rows
(`sims.runs.plan.simulate_at`, `--reps` projections): achieved mean ± s.e. against the target.
Also the rule k ~ d_eff at the same operating point. Prints a Markdown table.

With --network: the same on per-example gradients of a trained network (the after-kernel
features phi_i = grad_theta f(x_i; theta_hat) of `sims.network`: tanh MLP on digits, H hidden
units, lam = 4 weight decay), as a TRAK user would pass them: features Phi (n x p, rank <= n),
labels y, the ridge GLM on Phi with the network's lam, test rows phi(x_0).

    .venv/bin/python benchmarks/validate_plan.py [--reps 5] [--n-test 100]
    .venv/bin/python benchmarks/validate_plan.py --network [--hidden 6] [--n-train 200] [--reps 5] [--n-test 100]
"""

import argparse

import numpy as np

from sims.runs.plan import plan, simulate_at
from sims.runs.real import DATASETS, load


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--n-proj", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--network", action="store_true", help="validate on after-kernel features of a trained MLP")
    ap.add_argument("--hidden", type=int, default=6)
    ap.add_argument("--n-train", type=int, default=200)
    a = ap.parse_args()
    print("| dataset | n x p | metric | target | recommended k | predicted | achieved ± s.e. | d_A | rule k | predicted at rule k | achieved at rule k |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, family, lam, X, y, X0 in (network_cases(a) if a.network else dataset_cases(a)):
        for metric in ("pearson", "spearman"):
            kw = dict(family=family, lam=lam, metric=metric, n_proj=(a.n_proj,), scan_lam_trak=False)
            res = plan(X, y, target=0.8, **kw)
            rec = res["recommendation"][0]
            target = 0.8
            if rec["k"] is None:
                target = round(0.9 * rec["ceiling"], 3)
                res = plan(X, y, target=target, **kw)
                rec = res["recommendation"][0]
            eff = res["effective_dimension"]
            sim = simulate_at(X, y, X0, family=family, lam=lam, k=rec["k"], n_proj=a.n_proj,
                              reps=a.reps, seed=a.seed)["trak"][metric]
            rule = eff["predicted_at_k_rule"][0]["predicted"]
            rule_sim = "-"
            if rule is not None:
                r = simulate_at(X, y, X0, family=family, lam=lam, k=eff["k_rule"], n_proj=a.n_proj,
                                reps=a.reps, seed=a.seed)["trak"][metric]
                rule_sim = f"{r['mean']:.3f} ± {r['se']:.3f}"
            print(f"| {name} | {X.shape[0]} x {X.shape[1]} | {metric} | {target:g} | {rec['k']} | "
                  f"{rec['predicted']:.3f} | {sim['mean']:.3f} ± {sim['se']:.3f} | {eff['d_A']:.1f} | "
                  f"{eff['k_rule']} | {'-' if rule is None else f'{rule:.3f}'} | {rule_sim} |", flush=True)


def dataset_cases(a):
    for name in DATASETS:
        d = load(name)
        perm = np.random.default_rng(a.seed).permutation(len(d.y))
        tr, te = perm[a.n_test:], perm[:a.n_test]
        yield name, d.family, 0.1, d.X[tr], d.y[tr], d.X[te]


def network_cases(a):
    """After-kernel features of the trained network of `sims.network` (same split and training)."""
    import jax
    import jax.numpy as jnp

    from sims.network.data import split
    from sims.network.model import Shapes, features, init_params
    from sims.network.train import train
    from theory import enable_float64

    enable_float64()
    lam = 4.0
    k_split, k_init, _ = jax.random.split(jax.random.PRNGKey(a.seed), 3)
    data = split("digits", a.n_train, a.n_test, k_split)
    shapes = Shapes(data.X.shape[1], a.hidden)
    tr = train(shapes, init_params(k_init, shapes), jnp.asarray(data.X), jnp.asarray(data.y), lam,
               tol=1e-10, lbfgs_iters=2000, max_iter=1000)
    theta = jnp.asarray(tr.theta)
    Phi = np.asarray(features(shapes, theta, jnp.asarray(data.X)))
    Phi0 = np.asarray(features(shapes, theta, jnp.asarray(data.X0)))
    yield f"digits MLP H={a.hidden} gradients", "logistic", lam, Phi, np.asarray(data.y, float), Phi0


if __name__ == "__main__":
    main()
