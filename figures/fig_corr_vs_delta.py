"""Pearson and Spearman correlation with exact LOO versus n/p, several k/p (figures/specs/fig_corr_vs_delta.toml)."""

from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np

from ._common import (add_caption, log_ticks, LABELS, METRIC_LABELS, caption, model_of, plot_sim, plot_theory,
                     predict_curve, run_figure_sweep, save, select, sim_series, theory_grid)

NAME = "fig_corr_vs_delta"
COST = 45   # seconds, quick preset from scratch on 2 cores (orders parallel drawing)


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    spec, summaries = run_figure_sweep(NAME, preset, progress)
    deltas = theory_grid(spec)
    kappas = sorted({s["config"]["kappa"] for s in summaries})
    base = model_of(summaries[0]["config"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    shades = plt.cm.Purples(np.linspace(0.45, 0.95, len(kappas)))
    for ax, metric in zip(axes, ("pearson", "spearman")):
        for kappa, shade in zip(kappas, shades):
            valid = deltas[deltas > kappa * 1.05]
            curve = predict_curve("delta", valid, **{**base, "kappa": kappa})
            plot_theory(ax, valid, curve["trak"][metric], "trak", color=shade, label=f"TRAK, k/p = {kappa:g}")
            x, m, se = sim_series(select(summaries, kappa=kappa), "delta", "trak", metric)
            plot_sim(ax, x, m, se, "trak", color=shade, label=None)
        curve = predict_curve("delta", deltas, **{**base, "kappa": kappas[0]})
        for est in ("if", "ns"):
            plot_theory(ax, deltas, curve[est][metric], est, label=LABELS[est])
            x, m, se = sim_series(select(summaries, kappa=kappas[0]), "delta", est, metric)
            plot_sim(ax, x, m, se, est, label=None)
        ax.set_xscale("log")
        log_ticks(ax, [0.75, 1, 1.5, 2, 3, 4])
        ax.set_xlabel("n/p (δ)")
        ax.set_title(METRIC_LABELS[metric])
    axes[0].set_ylim(0, 1.02)
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    fig.suptitle("Correlation with exact LOO versus n/p  (lines: theory, points: simulation)", fontsize=11)
    add_caption(fig, caption(spec, preset))
    return save(fig, NAME)

