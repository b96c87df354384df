"""The tables of docs/network.md: `run_network` at two network sizes, rendered as Markdown.

Each size is run once and its result written to benchmarks/network_tables/<size>.json (committed,
so the tables can be re-rendered without rerunning); `--render` prints the Markdown of every cached size.

    .venv/bin/python benchmarks/network_tables.py --size h6      # H = 6,  n = 200, p = 379
    .venv/bin/python benchmarks/network_tables.py --size h8      # H = 8,  n = 400, p = 505
    .venv/bin/python benchmarks/network_tables.py --size h10     # H = 10, n = 400, p = 631
    .venv/bin/python benchmarks/network_tables.py --render
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "network_tables"
COMMON = dict(lam=4.0, kappas=(0.01, 0.1, 0.5, 1.0), n_projs=(1, 4, 16), lam_trak=(0.0, 1.0), n_test=10,
              draws=3, seed=0, check_points=1)
SIZES = {"h6": dict(hidden=6, n_train=200), "h8": dict(hidden=8, n_train=400, max_iter=1000),
         "h10": dict(hidden=10, n_train=400, max_iter=1000)}
FIXED = ("if_exact", "ns_exact", "if_gn", "ns_gn", "newton_step")
TRUTHS = (("network_loo", "net"), ("linearized_loo", "lin"))


def _f(v, nd=3):
    return "–" if v is None else f"{v:.{nd}f}"


def _ms(sc, nd=3):
    return "–" if sc["mean"] is None else f"{sc['mean']:.{nd}f} ± {sc['se']:.{nd}f}"


def render(res: dict, size: str) -> str:
    c, tr, loo, t = res["config"], res["training"], res["loo"], res["timings"]
    gap = res["linearization_gap"]
    out = [f"### H = {c['hidden']}, p = {c['p']}, n = {c['n_train']} (δ = n/p = {c['delta']:.2f}; "
           f"`--size {size}`)", "",
           f"Train accuracy {tr['train_accuracy']:.3f}, test accuracy {tr['test_accuracy']:.2f}, "
           f"{tr['units'].get('distinct', '?')}/{c['hidden']} distinct units, smallest Hessian eigenvalue "
           f"{tr['hessian_min_eig']:.3f} (Gauss–Newton {tr['hessian_min_eig_gn']:.3f}), "
           f"{len(loo['not_pd_points'])} non-PD points, {len(loo['fallback_points'])} of {c['n_train']} points "
           f"solved by the fallback. T = {c['n_test']} test points, {c['draws']} projection draws, top-m "
           f"with m = {c['top_m']}. Wall time {t['total_s']:.0f} s (train {t['train_s']:.0f} s, network LOO "
           f"{t['network_loo_s']:.0f} s, linearized LOO {t['linearized_loo_s']:.0f} s, estimators and theory "
           f"{t['estimators_s']:.0f} s) on the shared 2-core machine.", "",
           f"Linearization gap (linearized LOO against network LOO): Pearson {_ms(gap['pearson'])}, "
           f"Spearman {_ms(gap['spearman'])}, relative error {_f(gap['rel_error']['mean'])}, "
           f"top-m overlap {_f(gap['top_overlap']['mean'])}.", ""]
    head = ["estimator"] + [f"{m} vs {s}" for s in ("net", "lin") for m in ("Pearson", "Spearman", "rel. err", "top-m")]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in FIXED:
        sc = res["estimators"][name]
        cells = [_f(sc[tr_][m]["mean"]) for tr_, _ in TRUTHS for m in ("pearson", "spearman", "rel_error", "top_overlap")]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += ["", "TRAK (unscaled rule) per (k/p, M, λ_T), against both truths, and the theory's prediction "
            "(which describes the linearized model):", ""]
    head = ["k/p", "M", "λ_T", "P net", "S net", "rel net", "top net", "P lin", "S lin", "rel lin", "top lin",
            "P theory", "S theory", "rel theory"]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in res["trak"]:
        sc = g["estimators"]["trak"]
        th = (g.get("theory") or {}).get("trak") or {}
        # a singular Gram (lam_T = 0, k > n) has no scores: every metric is shown as undefined
        undefined = sc["network_loo"]["pearson"]["mean"] is None
        cells = [_f(None if undefined else sc[tr_][m]["mean"]) for tr_, _ in TRUTHS
                 for m in ("pearson", "spearman", "rel_error", "top_overlap")]
        cells += [_f(th.get("pearson")), _f(th.get("spearman")), _f(th.get("rel_error"))]
        out.append(f"| {g['kappa']} | {g['n_proj']} | {g['lam_trak']} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES))
    ap.add_argument("--render", action="store_true")
    args = ap.parse_args()
    if args.size:
        from sims.network import run_network

        t0 = time.perf_counter()
        res = run_network(**SIZES[args.size], **COMMON)
        res["timings"]["script_s"] = time.perf_counter() - t0
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{args.size}.json").write_text(json.dumps(res, indent=1))
        print(render(res, args.size))
    if args.render:
        for size in SIZES:
            path = RESULTS / f"{size}.json"
            if path.exists():
                print(render(json.loads(path.read_text()), size) + "\n")


if __name__ == "__main__":
    main()
