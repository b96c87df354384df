"""Real data: exact LOO versus IF and TRAK, against the theory at the empirical spectrum (figures/specs/fig_real.toml).

Runs `sims.runs.real.run_real` (needs the optional extra trak-sim[data], scikit-learn) and caches each
(dataset, n/p, k/p) result as JSON under results/<preset>/fig_real/, keyed by a content hash of
all the arguments.
"""

from __future__ import annotations

import tomllib

import matplotlib.pyplot as plt
import numpy as np

from ._common import COLORS, SPECS, add_caption, cached_json, results_dir, save, theory

NAME = "fig_real"
COST = 70   # seconds, quick preset from scratch on 2 cores (orders parallel drawing)


def _run_cached(store, **kwargs):
    """`sims.runs.real.run_real(**kwargs)`, cached (`_common.cached_json`)."""
    from sims.runs.real import run_real

    return cached_json(store, kwargs["name"], run_real, **kwargs)


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    from sims.runs.real import DATASETS, load
    raw = tomllib.loads((SPECS / f"{NAME}.toml").read_text())
    fig_cfg, pre = raw["figure"], raw["presets"][preset]
    store = results_dir() / preset / NAME
    datasets = fig_cfg["datasets"]
    fig, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 4.2), sharey=True)
    shades = {d: c for d, c in zip(fig_cfg["deltas"], ("#7570b3", "#2c1d6b"))}
    dense = np.linspace(0.15, 1.0, 25)
    for ax, name in zip(axes, datasets):
        data = load(name)
        for delta in fig_cfg["deltas"]:
            runs = [_run_cached(store, name=name, delta=delta, kappa=kappa, lam=fig_cfg["lam"],
                                lam_trak=fig_cfg["lam_trak"], reps=pre["reps"], n_test=pre["n_test"],
                                seed=fig_cfg["seed"])
                    for kappa in fig_cfg["kappas"]]
            th = theory("predict_curve", "kappa", [float(k) for k in dense], spectrum=data.spectrum,
                        theta=data.theta, family=data.family, delta=delta, lam=fig_cfg["lam"],
                        lam_trak=fig_cfg["lam_trak"], gamma=data.gamma, sigma=data.sigma)["estimators"]
            ax.plot(dense, th["trak"]["spearman"], color=shades[delta], label=f"TRAK, n/p = {delta:g}")
            ax.plot(dense, th["if"]["spearman"], color=COLORS["if"], lw=1.2,
                    ls="-" if delta == fig_cfg["deltas"][0] else "--", label=f"IF, n/p = {delta:g}")
            for est, col in (("trak", shades[delta]), ("if", COLORS["if"])):
                x = [r["config"]["kappa"] for r in runs]
                m = [r["simulation"][est]["spearman"]["mean"] for r in runs]
                se = [r["simulation"][est]["spearman"]["se"] for r in runs]
                ax.errorbar(x, m, yerr=2 * np.asarray(se), fmt="o", color=col, ms=4)
        N, p = data.X.shape
        ax.set_title(f"{name} ({DATASETS[name][0]}, N = {N}, p = {p})", fontsize=9)
        ax.set_xlabel("k/p")
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("Spearman corr. with exact LOO")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Real data: theory at the empirical spectrum (lines) versus exact LOO on subsamples (points)",
                 fontsize=11)
    add_caption(fig, raw["description"] + f"  {pre['reps']} subsamples × {pre['n_test']} test points "
                 f"(preset '{preset}'); error bars ± 2 s.e.")
    return save(fig, NAME)

