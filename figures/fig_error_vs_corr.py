"""Imperfect influence, preserved rankings: relative error and scale next to Spearman, versus n/p."""

from __future__ import annotations


import matplotlib.pyplot as plt

from ._common import (add_caption, log_ticks, METRIC_LABELS, caption, model_of, plot_sim, plot_theory, predict_curve,
                     run_figure_sweep, save, sim_series, theory_grid)

NAME = "fig_error_vs_corr"
COST = 2   # seconds, quick preset from scratch on 2 cores (orders parallel drawing)


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    spec, summaries = run_figure_sweep(NAME, preset, progress)
    deltas = theory_grid(spec)
    curve = predict_curve("delta", deltas, **model_of(summaries[0]["config"]))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, metric in zip(axes, ("rel_error", "scale", "spearman")):
        for est in ("ns", "if", "trak"):
            plot_theory(ax, deltas, curve[est][metric], est)
            x, m, se = sim_series(summaries, "delta", est, metric)
            plot_sim(ax, x, m, se, est)
        ax.set_xscale("log")
        log_ticks(ax, [0.75, 1, 1.5, 2, 3, 4])
        ax.set_xlabel("n/p (δ)")
        ax.set_title(METRIC_LABELS[metric])
    axes[1].set_yscale("log")
    axes[2].set_ylim(0, 1.02)
    axes[0].legend(loc="center right", fontsize=8)
    fig.suptitle("Imperfect influence, preserved rankings: values are off by O(1), ranks survive", fontsize=11)
    add_caption(fig, caption(spec, preset))
    return save(fig, NAME)

