"""TRAK versus k for power-law spectra: k/p and k/d_A (figures/specs/fig_covariance.toml)."""

from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np

from ._common import add_caption, caption, model_of, run_figure_sweep, save, select, sim_series, theory_grid, theory

NAME = "fig_covariance"
COST = 28   # seconds, quick preset from scratch on 2 cores (orders parallel drawing)


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    spec, summaries = run_figure_sweep(NAME, preset, progress)
    kappas = theory_grid(spec)
    alphas = sorted({s["config"]["cov_param"] for s in summaries})
    p = summaries[0]["config"]["p"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), sharey=True)
    shades = plt.cm.viridis(np.linspace(0.05, 0.85, len(alphas)))
    for alpha, col in zip(alphas, shades):
        base = model_of(select(summaries, cov_param=alpha)[0]["config"])
        fixed = {k: v for k, v in base.items() if k != "kappa"}
        curve = theory("predict_curve", "kappa", [float(k) for k in kappas], **fixed, p=p)
        rho = np.asarray(curve["estimators"]["trak"]["pearson"])
        d_A = float(curve["constants"]["d_A"][0])
        label = f"α = {alpha:g} (d_A = {d_A:.0f})"
        axes[0].plot(kappas, rho, color=col, label=label)
        axes[1].plot(kappas * p / d_A, rho, color=col, label=label)
        x, m, se = sim_series(select(summaries, cov_param=alpha), "kappa", "trak", "pearson")
        axes[0].errorbar(x, m, yerr=2 * se, fmt="o", color=col, ms=4)
        axes[1].errorbar(x * p / d_A, m, yerr=2 * se, fmt="o", color=col, ms=4)
    axes[0].set_xlabel("k/p")
    axes[1].set_xlabel("k / d_A  (d_A: effective dimension of the Hessian)")
    axes[0].set_ylabel("Pearson corr. of TRAK with LOO")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_ylim(0, 1)
    axes[1].axvline(1.0, color="0.5", ls=":", lw=1)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Decaying spectra: TRAK needs k comparable to the effective dimension, not to p = {p}",
                 fontsize=11)
    add_caption(fig, caption(spec, preset))
    return save(fig, NAME)

