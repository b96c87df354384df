"""Gaussian, logistic and poisson ridge: Spearman and Pearson of TRAK and IF versus k/p."""

from __future__ import annotations


import matplotlib.pyplot as plt

from ._common import (add_caption, caption, model_of, plot_sim, plot_theory, predict_curve, run_figure_sweep,
                     save, select, sim_series, theory_grid)

NAME = "fig_families"
COST = 12   # seconds, quick preset from scratch on 2 cores (orders parallel drawing)


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    spec, summaries = run_figure_sweep(NAME, preset, progress)
    kappas = theory_grid(spec)
    families = ("gaussian", "logistic", "poisson")
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharey=True, sharex=True)
    for col, family in enumerate(families):
        sims_ = select(summaries, family=family)
        curve = predict_curve("kappa", kappas, **model_of(sims_[0]["config"]))
        for row, metric in enumerate(("pearson", "spearman")):
            ax = axes[row, col]
            for est in ("ns", "if", "trak"):
                plot_theory(ax, kappas, curve[est][metric], est)
                x, m, se = sim_series(sims_, "kappa", est, metric)
                plot_sim(ax, x, m, se, est)
            ax.set_title(f"{family}: {metric}")
            ax.set_ylim(0, 1.02)
            if row == 1:
                ax.set_xlabel("k/p (κ)")
    axes[0, 0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Per family: correlation with exact LOO versus projection size", fontsize=11)
    add_caption(fig, caption(spec, preset))
    return save(fig, NAME)

