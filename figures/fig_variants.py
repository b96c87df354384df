"""Decomposition of TRAK's approximations and of the corrections that undo them (figures/specs/fig_variants.toml)."""

from __future__ import annotations


import matplotlib.pyplot as plt

from theory.estimators import REGISTRY, SKETCHED

from ._common import (add_caption, LABELS, METRIC_LABELS, caption, log_ticks, model_of, plot_sim, plot_theory,
                     predict_curve, run_figure_sweep, save, select, sim_series, theory_grid)

NAME = "fig_variants"
COST = 31   # seconds, quick preset from scratch on 2 cores (orders parallel drawing)
ORDER = ("ns", "if") + tuple(reversed(SKETCHED))     # every sketched estimator of the registry, TRAK on top


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    spec, summaries = run_figure_sweep(NAME, preset, progress)
    base = model_of(select(summaries, delta=2.0, kappa=1.0)[0]["config"])
    rows = [("kappa", theory_grid(spec, "kappa"), dict(delta=2.0)), ("delta", theory_grid(spec, "delta"), dict(kappa=1.0))]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    for r, (vary, values, fixed) in enumerate(rows):
        curve = predict_curve(vary, values, variants=True, **{**base, **fixed})
        sims_ = select(summaries, **fixed)
        for c, metric in enumerate(("spearman", "rel_error")):
            ax = axes[r, c]
            for est in ORDER:
                ls = "--" if REGISTRY[est].dashed else "-"
                plot_theory(ax, values, curve[est][metric], est, ls=ls, label=LABELS[est])
                x, m, se = sim_series(sims_, vary, est, metric)
                plot_sim(ax, x, m, se, est, label=None)
            if vary == "delta":
                ax.set_xscale("log")
                log_ticks(ax, [0.5, 1, 2, 4])
                if metric == "rel_error":
                    ax.set_yscale("log")
            ax.set_xlabel({"kappa": "k/p (κ), n/p = 2", "delta": "n/p (δ), k/p = 1"}[vary])
            ax.set_title(METRIC_LABELS[metric])
            if metric == "spearman":
                ax.set_ylim(0, 1.02)
    axes[0, 0].legend(fontsize=8, loc="lower right")
    fig.suptitle("What each approximation of TRAK costs: lines theory, points simulation "
                 "(dashed: with the leverage factor)", fontsize=11)
    add_caption(fig, caption(spec, preset))
    return save(fig, NAME)

