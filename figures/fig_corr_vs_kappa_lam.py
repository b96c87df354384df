"""Correlation with exact LOO versus k/p and versus λ (figures/specs/fig_corr_vs_kappa_lam.toml)."""

from __future__ import annotations


import matplotlib.pyplot as plt

from ._common import (add_caption, METRIC_LABELS, caption, model_of, plot_sim, plot_theory, predict_curve,
                     run_figure_sweep, save, select, sim_series, theory_grid)

NAME = "fig_corr_vs_kappa_lam"
COST = 13   # seconds, quick preset from scratch on 2 cores (orders parallel drawing)


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    spec, summaries = run_figure_sweep(NAME, preset, progress)
    base = model_of(select(summaries, kappa=0.5, lam=0.1)[0]["config"])
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), sharey="row", constrained_layout=True)
    panels = [("kappa", theory_grid(spec, "kappa"), dict(lam=0.1)), ("lam", theory_grid(spec, "lam"), dict(kappa=0.5))]
    for col, (vary, values, fixed) in enumerate(panels):
        curve = predict_curve(vary, values, **{**base, **fixed})
        sims_ = select(summaries, **fixed)
        for row, metric in enumerate(("pearson", "spearman")):
            ax = axes[row, col]
            for est in ("ns", "if", "trak"):
                plot_theory(ax, values, curve[est][metric], est)
                x, m, se = sim_series(sims_, vary, est, metric)
                plot_sim(ax, x, m, se, est)
            if vary == "lam":
                ax.set_xscale("log")
            ax.set_xlabel({"kappa": "k/p (κ), λ = 0.1", "lam": "ridge λ, k/p = 0.5"}[vary])
            ax.set_title(METRIC_LABELS[metric])
            ax.set_ylim(0, 1.02)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    axes[0, 0].legend(handles, labels, loc="lower right", fontsize=8)
    fig.suptitle("Where TRAK's ranking is lost: projection size and regularization", fontsize=11)
    add_caption(fig, caption(spec, preset))
    return save(fig, NAME)

