"""LDS (what TRAK users report) next to the correlation with exact LOO (figures/specs/fig_lds.toml)."""

from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np

from ._common import (add_caption, LABELS, METRIC_LABELS, caption, model_of, plot_sim, plot_theory, predict_curve,
                     run_figure_sweep, save, sim_series, theory_grid, theory)

NAME = "fig_lds"
COST = 6   # seconds, quick preset from scratch on 2 cores (orders parallel drawing)


def lds_curve(kappas, config) -> dict:
    """theory.predict(lds_alpha=1/2, lds_subsets=J) along kappa: {estimator: array} (the expected
    Spearman over the simulation's J subsets; the two-replica part is computed once and cached)."""
    rows = [theory("predict", **{**model_of(config), "kappa": float(k)}, lds_alpha=config.get("lds_alpha", 0.5),
                    lds_subsets=config["lds_subsets"])["estimators"] for k in kappas]
    return {e: np.array([r[e]["lds"] for r in rows]) for e in rows[0]}


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    spec, summaries = run_figure_sweep(NAME, preset, progress)
    kappas = theory_grid(spec)
    curve = predict_curve("kappa", kappas, **model_of(summaries[0]["config"]))
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.2), sharey=True)
    for est in ("ns", "if", "trak"):
        plot_theory(axes[0], kappas, curve[est]["spearman"], est, label=f"{LABELS[est]} (theory)")
        x, m, se = sim_series(summaries, "kappa", est, "spearman")
        plot_sim(axes[0], x, m, se, est, label=None)
    lds = lds_curve(kappas, summaries[0]["config"])
    for est in ("loo", "if", "trak"):
        plot_theory(axes[1], kappas, lds[est], est, label=f"{LABELS[est]} (theory)")
    for est in ("loo", "ns", "if", "trak"):
        x, m, se = sim_series(summaries, "kappa", est, "lds")
        plot_sim(axes[1], x, m, se, est, label=LABELS[est])
    axes[0].set_title(METRIC_LABELS["spearman"])
    axes[1].set_title(METRIC_LABELS["lds"] + f", J = {summaries[0]['config']['lds_subsets']} subsets")
    for ax in axes:
        ax.set_xlabel("k/p (κ)")
        ax.set_ylim(0, 1.02)
    axes[0].legend(fontsize=8, loc="lower right")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle("LDS versus correlation with exact LOO: the same ordering, lower ceiling "
                 "(lines theory, points simulation)", fontsize=11)
    add_caption(fig, caption(spec, preset))
    return save(fig, NAME)

