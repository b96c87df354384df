"""Validation of `trak-sim plan` on the real datasets of the suite (sims/runs/real.py DATASETS).

For each dataset: hold out n_test rows as test points, plan on the rest (lam = 0.1 on the
standardized features, lam_T = 0, M = 2) for each metric at target 0.8 (or 0.9 x the ceiling when
0.8 is unreachable), then exact LOO versus TRAK at the recommended k on the same training rows
(`sims.runs.plan.simulate_at`, `--reps` projections): achieved mean ± s.e. against the target.
Also the rule k ~ d_eff at the same operating point. Prints a Markdown table.

    .venv/bin/python benchmarks/validate_plan.py [--reps 5] [--n-test 100]
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
    a = ap.parse_args()
    print("| dataset | n x p | metric | target | recommended k | predicted | achieved ± s.e. | d_A | rule k | predicted at rule k | achieved at rule k |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in DATASETS:
        d = load(name)
        perm = np.random.default_rng(a.seed).permutation(len(d.y))
        tr, te = perm[a.n_test:], perm[:a.n_test]
        X, y = d.X[tr], d.y[tr]
        for metric in ("pearson", "spearman"):
            kw = dict(family=d.family, lam=0.1, metric=metric, n_proj=(a.n_proj,), scan_lam_trak=False)
            res = plan(X, y, target=0.8, **kw)
            rec = res["recommendation"][0]
            target = 0.8
            if rec["k"] is None:
                target = round(0.9 * rec["ceiling"], 3)
                res = plan(X, y, target=target, **kw)
                rec = res["recommendation"][0]
            eff = res["effective_dimension"]
            sim = simulate_at(X, y, d.X[te], family=d.family, lam=0.1, k=rec["k"], n_proj=a.n_proj,
                              reps=a.reps, seed=a.seed)["trak"][metric]
            rule = eff["predicted_at_k_rule"][0]["predicted"]
            rule_sim = "-"
            if rule is not None:
                r = simulate_at(X, y, d.X[te], family=d.family, lam=0.1, k=eff["k_rule"], n_proj=a.n_proj,
                                reps=a.reps, seed=a.seed)["trak"][metric]
                rule_sim = f"{r['mean']:.3f} ± {r['se']:.3f}"
            print(f"| {name} | {X.shape[0]} x {X.shape[1]} | {metric} | {target:g} | {rec['k']} | "
                  f"{rec['predicted']:.3f} | {sim['mean']:.3f} ± {sim['se']:.3f} | {eff['d_A']:.1f} | "
                  f"{eff['k_rule']} | {'-' if rule is None else f'{rule:.3f}'} | {rule_sim} |", flush=True)


if __name__ == "__main__":
    main()
