"""Finite-size convergence: |theory − simulation| versus p on log-log axes (figures/specs/fig_finite_size.toml)."""

from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np

from ._common import add_caption, COLORS, LABELS, log_ticks, model_of, run_figure_sweep, save, theory

NAME = "fig_finite_size"
COST = 12   # seconds, quick preset from scratch on 2 cores (orders parallel drawing)
SERIES = [("trak", "pearson", "o"), ("trak", "spearman", "s"), ("if", "spearman", "^"),
          ("if", "rel_error", "v"), ("ns", "rel_error", "D")]


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    spec, summaries = run_figure_sweep(NAME, preset, progress)
    summaries = sorted(summaries, key=lambda s: s["config"]["p"])
    th = theory("predict", **model_of(summaries[0]["config"]))["estimators"]
    ps = np.array([s["config"]["p"] for s in summaries])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for est, metric, marker in SERIES:
        gap = np.array([abs(s["estimators"][est][metric]["mean"] - th[est][metric]) for s in summaries])
        se = np.array([s["estimators"][est][metric]["se"] for s in summaries])
        lower = np.minimum(2 * se, 0.9 * gap)          # keep the bars on a log axis
        ax.errorbar(ps, gap, yerr=[lower, 2 * se], fmt=marker + "-", color=COLORS[est], ms=5, lw=1,
                    label=f"{LABELS[est]} {metric.replace('_', ' ')}", alpha=0.9)
    ref = 0.5 * ax.get_ylim()[1] * np.sqrt(ps[0] / ps)
    ax.plot(ps, ref, "k--", lw=1, label="∝ p^(−1/2)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    log_ticks(ax, list(ps))
    ax.set_xlabel("p (n = 2p)")
    ax.set_ylabel("|simulation − theory|  (± 2 s.e.)")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Finite-size convergence to the proportional limit")
    reps = ", ".join(f"{s['config']['p']}: {s['estimators']['ns']['pearson']['reps']}" for s in summaries)
    add_caption(fig, f"{spec.description}  Replicates per p ({reps}), {summaries[0]['config']['n_test']} "
                 f"test points each (preset '{preset}'); error bars ± 2 s.e.")
    return save(fig, NAME)

