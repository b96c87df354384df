"""Universality: non-Gaussian feature designs against the Gaussian theory (figures/specs/fig_designs.toml)."""

from __future__ import annotations


import matplotlib.pyplot as plt

from ._common import (add_caption, METRIC_LABELS, caption, model_of, plot_sim, plot_theory, predict_curve,
                     run_figure_sweep, save, select, sim_series, theory_grid)

NAME = "fig_designs"
COST = 6   # seconds, quick preset from scratch on 2 cores (orders parallel drawing)
MARKERS = {"gaussian": "o", "rademacher": "s", "student_t": "^"}
OFFSET = {"gaussian": -0.012, "rademacher": 0.0, "student_t": 0.012}


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    spec, summaries = run_figure_sweep(NAME, preset, progress)
    kappas = theory_grid(spec)
    curve = predict_curve("kappa", kappas, **model_of(summaries[0]["config"]))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for ax, metric in zip(axes, ("pearson", "spearman", "rel_error")):
        for est in ("ns", "if", "trak"):
            plot_theory(ax, kappas, curve[est][metric], est, label=f"{est.upper()} (Gaussian theory)")
            for design, marker in MARKERS.items():
                x, m, se = sim_series(select(summaries, design=design), "kappa", est, metric)
                plot_sim(ax, x + OFFSET[design], m, se, est, fmt=marker, mfc="white",
                         label=f"{design} features" if est == "trak" else None)
        ax.set_xlabel("k/p (κ)")
        ax.set_title(METRIC_LABELS[metric])
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Universality: Rademacher and heavy-tailed features follow the Gaussian theory", fontsize=11)
    add_caption(fig, caption(spec, preset))
    return save(fig, NAME)

