"""TRAK's correlation with exact LOO versus the number of averaged projections M (figures/specs/fig_nproj.toml)."""

from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np

from ._common import (add_caption, log_ticks, METRIC_LABELS, caption, model_of, plot_sim, plot_theory, predict_curve,
                     run_figure_sweep, save, select, sim_series, theory)

NAME = "fig_nproj"
COST = 8   # seconds, quick preset from scratch on 2 cores (orders parallel drawing)


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    spec, summaries = run_figure_sweep(NAME, preset, progress)
    Ms = np.asarray(spec.raw["theory"]["values"], dtype=int)
    kappas = sorted({s["config"]["kappa"] for s in summaries})
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    shades = plt.cm.Purples(np.linspace(0.55, 0.95, len(kappas)))
    for ax, metric in zip(axes, ("pearson", "spearman")):
        for kappa, shade in zip(kappas, shades):
            base = model_of(select(summaries, kappa=kappa)[0]["config"])
            curve = predict_curve("n_proj", Ms, **base)
            plot_theory(ax, Ms, curve["trak"][metric], "trak", color=shade, label=f"TRAK, k/p = {kappa:g}")
            limit = theory("predict", **{**base, "n_proj": 10**9})["estimators"]["trak"][metric]
            ax.axhline(limit, color=shade, ls=":", lw=1.2)
            x, m, se = sim_series(select(summaries, kappa=kappa), "n_proj", "trak", metric)
            plot_sim(ax, x, m, se, "trak", color=shade, label=None)
        if_value = theory("predict", **base)["estimators"]["if"][metric]
        ax.axhline(if_value, color="#d95f02", lw=1.2, label="IF (theory)")
        ax.set_xscale("log", base=2)
        log_ticks(ax, [1, 2, 4, 8, 16, 32])
        ax.set_xlabel("number of projections M")
        ax.set_title(METRIC_LABELS[metric])
    axes[0].set_ylim(0, 1.02)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Averaging projections removes variance, not bias (dotted: M → ∞)", fontsize=11)
    add_caption(fig, caption(spec, preset))
    return save(fig, NAME)

