"""Validation of the conditional theory (`theory.conditional`, docs/theory.md §11) against TRAK
computed with real sketches on the same data and the same truth.

Cases: digits (logistic), breast_cancer (logistic), digits_ridge (gaussian), the after-kernel
features of the trained perceptron of `sims.network` (truth: linearized LOO), and an isotropic
Gaussian design (where the conditional theory must also agree with `theory.predict`). For each:
50 held-out test rows, the truth exact LOO, k geometric in [10, rank - 1], lam_T in {0, 0.1 tr(X^T X)/p},
M in {1, 4, 16}, `--reps` draws of M sketches per point. Bar: |theory - Monte Carlo| <= 0.02, or
0.01 where n >= 1000 and the Hessian's effective dimension is >= 50 (`sims.runs.conditional.tolerance`).

    .venv/bin/python benchmarks/validate_conditional.py [--reps 32] [--cases digits breast_cancer ...]
        [--estimators trak trak_w trak_lev trak_wlev] [--projection rademacher]

Prints a Markdown table per case and writes benchmarks/results/validate_conditional.json.
"""

import argparse
import json
import time
from pathlib import Path

from sims.runs.conditional import dataset_case, gaussian_case, network_case, validate_case

CASES = ("digits", "breast_cancer", "digits_ridge", "network", "gaussian")


def make_case(name, seed):
    if name == "network":
        return network_case(seed=seed)
    if name == "gaussian":
        return gaussian_case(seed=seed)
    return dataset_case(name, seed=seed)


def gaussian_theory(case, rows):
    """theory.predict (the Gaussian-design theory) at each (k, lam_T, M) of the rows."""
    from theory import predict

    p = case.X.shape[1]
    out = {}
    for r in rows:
        key = (r["k"], r["lam_trak"], r["n_proj"])
        if key not in out:
            out[key] = predict(kappa=r["k"] / p, lam_trak=r["lam_trak"], n_proj=r["n_proj"],
                               **case.gaussian_design)["estimators"]["trak"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--estimators", nargs="+", default=["trak"])
    ap.add_argument("--projection", default="gaussian", choices=("gaussian", "rademacher"))
    a = ap.parse_args()
    results = []
    for name in a.cases:
        t0 = time.perf_counter()
        case = make_case(name, a.seed)
        res = validate_case(case, reps=a.reps, seed=a.seed + 1, estimators=a.estimators, projection=a.projection)
        res["seconds"] = time.perf_counter() - t0
        gauss = gaussian_theory(case, res["rows"]) if case.gaussian_design else None
        print(f"\n### {res['case']} ({res['family']}, n = {res['n']}, p = {res['p']}, rank {res['rank']}, "
              f"d_eff = {res['d_eff']:.1f}, truth {res['truth']}; tolerance {res['tolerance']}; "
              f"IF Spearman {res['exact']['if']['spearman']:.3f}, NS {res['exact']['ns']['spearman']:.3f})\n")
        head = "| estimator | M | k | λ_T | metric | theory | Monte Carlo ± s.e. | diff |"
        print(head + (" Gaussian-design theory |" if gauss else ""))
        print("|---" * (9 if gauss else 8) + "|")
        for r in res["rows"]:
            flag = "" if r["ok"] else " **over**"
            line = (f"| {r['estimator']} | {r['n_proj']} | {r['k']} | {r['lam_trak']:.3g} | {r['metric']} | "
                    f"{r['theory']:.3f} | {r['mc']:.3f} ± {r['mc_se']:.3f} | {r['diff']:+.3f}{flag} |")
            if gauss:
                line += f" {gauss[(r['k'], r['lam_trak'], r['n_proj'])][r['metric']]:.3f} |"
            print(line, flush=True)
        bad = [r for r in res["rows"] if not r["ok"]]
        worst = max(abs(r["diff"]) for r in res["rows"])
        print(f"\n{len(res['rows']) - len(bad)} of {len(res['rows'])} within {res['tolerance']}; "
              f"largest |diff| {worst:.4f}; {res['seconds']:.0f} s")
        if gauss:
            res["gaussian_theory"] = [dict(k=k, lam_trak=lt, n_proj=M, **v) for (k, lt, M), v in gauss.items()]
        results.append(res)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "validate_conditional.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
