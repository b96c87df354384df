"""Speed of the conditional theory (`theory.conditional`) against Monte Carlo over real sketches.

A synthetic problem of the issue's size (default n = 20000, p = 5000, T = 200; features with a
power-law spectrum s_j ~ j^-1, logistic-like g and w, the truth the Newton step of a ridge fit
with lam = 1) is built outside the timing. Then, in one run:

  theory    `ConditionalModel(X, g, X0, L)` (eigendecomposition, Grams) and a curve of `--points` k
            values (geometric in [10, p/2]) x the M values 1, 2, 4, 8, 16 (`predict(k, lamT, Ms)`),
            TRAK only, and again with the variants (w given: trak_w, trak_lev, trak_wlev);
  baseline  TRAK with `--mc-reps` real sketches at one k (M = 1, `sims.runs.conditional.
            sketch_monte_carlo`): what the theory replaces, per (k, M) point.

    .venv/bin/python benchmarks/bench_conditional.py [--n 20000] [--p 5000] [--T 200] [--points 30]
        [--top 500] [--no-variants]

Writes benchmarks/results/bench_conditional.json.
"""

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np


def problem(n, p, T, seed=0):
    rng = np.random.default_rng(seed)
    scale = np.arange(1, p + 1) ** -0.5
    X = rng.standard_normal((n, p)) * scale
    X0 = rng.standard_normal((T, p)) * scale
    beta = rng.standard_normal(p) * scale * 3.0 / np.sqrt(np.sum(scale**2))
    eta = X @ beta
    prob = 1.0 / (1.0 + np.exp(-eta))
    y = (rng.random(n) < prob).astype(float)
    g, w = prob - y, prob * (1 - prob)
    lam = 1.0
    H = (X.T * w) @ X + lam * np.eye(p)
    C = np.linalg.cholesky(H)
    Z = np.linalg.solve(C.T, np.linalg.solve(C, np.concatenate([X0, X]).T))    # H^-1 [X0; X]^T
    IF = -(X0 @ Z[:, T:]) * g
    h = np.sum(X.T * Z[:, T:], axis=0)
    return X, g, w, X0, IF / (1 - w * h)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--p", type=int, default=5000)
    ap.add_argument("--T", type=int, default=200)
    ap.add_argument("--points", type=int, default=30)
    ap.add_argument("--mc-reps", type=int, default=8)
    ap.add_argument("--no-variants", action="store_true")
    ap.add_argument("--top", type=int, default=0,
                    help="also the top-eigenpair model with the tail model (top = r), its time and its largest "
                         "difference from the exact one over the curve's k <= 0.8 r")
    a = ap.parse_args()
    from theory import enable_float64
    from theory.conditional import ConditionalModel
    from sims.runs.conditional import sketch_monte_carlo

    enable_float64()
    t0 = time.perf_counter()
    X, g, w, X0, L = problem(a.n, a.p, a.T)
    setup = time.perf_counter() - t0
    ks = sorted({int(round(v)) for v in np.geomspace(10, a.p // 2, a.points)})
    Ms = [1, 2, 4, 8, 16]
    res = {"n": a.n, "p": a.p, "T": a.T, "k_points": len(ks), "n_proj": Ms, "problem_s": setup}
    for label, kw, names in (("trak", {}, ["trak"]),
                             ("variants", {"w": w}, ["trak", "trak_w", "trak_lev", "trak_wlev"])):
        if label == "variants" and a.no_variants:
            continue
        t0 = time.perf_counter()
        model = ConditionalModel(X, g, X0, L, **kw)
        t_init = time.perf_counter() - t0
        t0 = time.perf_counter()
        curve = [model.predict(k, 0.0, Ms, estimators=names) for k in ks]
        t_curve = time.perf_counter() - t0
        if label == "trak":
            curve_trak = curve
        res[label] = {"init_s": t_init, "curve_s": t_curve, "total_s": t_init + t_curve,
                      "spearman_M1": [c[0]["estimators"]["trak"]["spearman"]["mean"] for c in curve],
                      "spearman_error_max": max(max(pt["spearman_error"].values()) for c in curve for pt in c)}
        print(f"{label}: model {t_init:.1f} s, {len(ks)} k x {len(Ms)} M curve {t_curve:.1f} s, "
              f"total {t_init + t_curve:.1f} s (largest Spearman pair-sampling s.e. "
              f"{res[label]['spearman_error_max']:.1e})", flush=True)
        del model
    if a.top:
        exact_sp = {k: [pt["estimators"]["trak"]["spearman"]["mean"] for pt in c] for k, c in zip(ks, curve_trak)}
        exact_pe = {k: [pt["estimators"]["trak"]["pearson"]["mean"] for pt in c] for k, c in zip(ks, curve_trak)}
        t0 = time.perf_counter()
        model = ConditionalModel(X, g, X0, L, top=a.top)
        t_init = time.perf_counter() - t0
        sub = [k for k in ks if k <= 0.8 * a.top]
        t0 = time.perf_counter()
        curve = [model.predict(k, 0.0, Ms, estimators=["trak"]) for k in sub]
        t_curve = time.perf_counter() - t0
        diff = max(max(abs(pt["estimators"]["trak"][m]["mean"] - ref[k][j])
                       for j, pt in enumerate(c) for m, ref in (("spearman", exact_sp), ("pearson", exact_pe)))
                   for k, c in zip(sub, curve))
        res["top"] = {"top": a.top, "init_s": t_init, "curve_s": t_curve, "k_points": len(sub), "max_abs_diff": diff}
        print(f"top {a.top} + tail model: model {t_init:.1f} s, {len(sub)} k (<= 0.8 top) x {len(Ms)} M curve "
              f"{t_curve:.1f} s; largest |Spearman or Pearson - exact| {diff:.4f}", flush=True)
    k_mc = ks[len(ks) // 2]
    t0 = time.perf_counter()
    sketch_monte_carlo(X, X0, g, w, L, k=k_mc, lam_trak=0.0, n_proj=1, reps=a.mc_reps)
    t_mc = time.perf_counter() - t0
    res["monte_carlo"] = {"k": k_mc, "reps": a.mc_reps, "seconds": t_mc, "per_sketch_s": t_mc / a.mc_reps}
    per_point = res["trak"]["curve_s"] / (len(ks) * len(Ms))
    print(f"baseline: {a.mc_reps} real sketches at k = {k_mc}, M = 1: {t_mc:.1f} s "
          f"({t_mc / a.mc_reps:.2f} s per sketch); theory {per_point:.3f} s per (k, M) point after the model "
          f"= {t_mc / a.mc_reps / per_point:.0f} sketches' worth")
    res["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS {res['peak_rss_gib']:.2f} GiB")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_conditional.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
