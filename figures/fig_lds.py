"""LDS (what TRAK users report) next to the correlation with exact LOO (figures/specs/fig_lds.toml)."""

from __future__ import annotations


import matplotlib.pyplot as plt

from ._common import (add_caption, LABELS, METRIC_LABELS, caption, model_of, plot_sim, plot_theory, predict_curve,
                     run_figure_sweep, save, sim_series, theory_grid)

NAME = "fig_lds"


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    spec, summaries = run_figure_sweep(NAME, preset, progress)
    kappas = theory_grid(spec)
    curve = predict_curve("kappa", kappas, **model_of(summaries[0]["config"]))
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.2), sharey=True)
    for est in ("ns", "if", "trak"):
        plot_theory(axes[0], kappas, curve[est]["spearman"], est, label=f"{LABELS[est]} (theory)")
        x, m, se = sim_series(summaries, "kappa", est, "spearman")
        plot_sim(axes[0], x, m, se, est, label=None)
    for est in ("loo", "ns", "if", "trak"):
        x, m, se = sim_series(summaries, "kappa", est, "lds")
        plot_sim(axes[1], x, m, se, est, fmt="o-", label=LABELS[est])
    axes[0].set_title(METRIC_LABELS["spearman"])
    axes[1].set_title(METRIC_LABELS["lds"] + " (simulation only)")
    for ax in axes:
        ax.set_xlabel("k/p (κ)")
        ax.set_ylim(0, 1.02)
    axes[0].legend(fontsize=8, loc="lower right")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle("LDS versus correlation with exact LOO: the same ordering, lower ceiling", fontsize=11)
    add_caption(fig, caption(spec, preset))
    return save(fig, NAME)

