"""TRAK on a trained network: TRAK against network LOO and linearized LOO, with the theory at the
after-kernel spectrum (figures/specs/fig_network.toml).

Runs `sims.network.run_network` (needs scikit-learn) and caches the result as JSON under
results/<preset>/fig_network/, keyed by a content hash of all the arguments.
"""

from __future__ import annotations

import tomllib

import matplotlib.pyplot as plt
import numpy as np

from ._common import SPECS, add_caption, cached_json, results_dir, save

NAME = "fig_network"
COST = 25   # seconds, quick preset from scratch on 2 cores (orders parallel drawing)
NETWORK_SCHEMA = 2   # 2: results carry the conditional theory


def _run_cached(store, **kwargs):
    from sims.network import run_network

    return cached_json(store, "network", run_network, key_extra={"network_schema": NETWORK_SCHEMA}, **kwargs)


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    raw = tomllib.loads((SPECS / f"{NAME}.toml").read_text())
    fig_cfg, pre = raw["figure"], raw["presets"][preset]
    res = _run_cached(results_dir() / preset / NAME, hidden=pre["hidden"], n_train=pre["n_train"],
                      n_test=pre["n_test"], kappas=pre["kappas"], n_projs=pre["n_projs"], lam=fig_cfg["lam"],
                      lam_trak=fig_cfg["lam_trak"], draws=pre["draws"], seed=fig_cfg["seed"], check_points=0)
    c = res["config"]
    lam_t = fig_cfg["lam_trak"][0]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    shades = ("#b3acd9", "#7570b3", "#2c1d6b")
    n_m = len(c["n_projs"])
    for ax, metric in zip(axes, ("spearman", "pearson")):
        for j, M in enumerate(c["n_projs"]):
            rows = [g for g in res["trak"] if g["n_proj"] == M and g["lam_trak"] == lam_t]
            x = np.array([g["kappa"] for g in rows])
            col = shades[min(j + (len(shades) - n_m), len(shades) - 1)]
            for t, (truth, fill, mk) in enumerate((("network_loo", col, "o"), ("linearized_loo", "white", "s"))):
                m = [g["estimators"]["trak"][truth][metric]["mean"] for g in rows]
                se = [g["estimators"]["trak"][truth][metric]["se"] for g in rows]
                ok = [i for i, v in enumerate(m) if v is not None]
                # dodge the points of each (M, truth) sideways on the log axis so that none hide another
                dodge = np.exp(0.045 * (2 * j + t - (2 * n_m - 1) / 2))
                ax.errorbar(x[ok] * dodge, [m[i] for i in ok], yerr=[2 * se[i] if se[i] else 0 for i in ok],
                            fmt=mk, mfc=fill, color=col, ms=5, capsize=2, lw=1, ls="none",
                            label=f"M = {M}: vs network LOO" if t == 0 else f"M = {M}: vs linearized LOO")
            th = [(g["kappa"], g.get("theory", {}).get("trak", {}).get(metric)) for g in rows]
            th = [(k, v) for k, v in th if v is not None]
            if th:
                ax.plot(*zip(*th), color=col, lw=1.0, ls=":", label=f"M = {M}: Gaussian-design theory")
            for truth, ls, what in (("network_loo", "-", "network"), ("linearized_loo", "--", "linearized")):
                cond = [(g["kappa"], g.get("conditional", {}).get(truth, {}).get("trak", {}).get(metric)) for g in rows]
                cond = [(k, v) for k, v in cond if v is not None]
                if cond:
                    ax.plot(*zip(*cond), color=col, lw=1.4, ls=ls,
                            label=f"M = {M}: conditional theory vs {what} LOO")
        gap = res["linearization_gap"][metric]["mean"]
        ax.axhline(gap, color="0.45", ls="--", lw=1, label="linearized vs network LOO")
        ax.set_xscale("log")
        ticks = sorted(set(c["kappas"]))
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{k:g}" for k in ticks])
        ax.minorticks_off()
        ax.set_xlim(min(ticks) / 1.5, max(ticks) * 1.5)
        ax.set_xlabel("k/p")
        ax.set_title(f"{metric.capitalize()} (H = {c['hidden']}, p = {c['p']}, n = {c['n_train']}, "
                     f"λ_T = {lam_t:g})", fontsize=9)
    axes[0].set_ylabel("correlation of TRAK with LOO")
    axes[0].set_ylim(0, 1.02)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[1].legend(handles, labels, fontsize=6.5, loc="center left", bbox_to_anchor=(1.02, 0.5), ncol=1)
    fig.suptitle("TRAK on a trained network: network LOO versus linearized LOO", fontsize=11)
    add_caption(fig, raw["description"] + f"  {c['n_test']} test points × {c['draws']} projection draws "
                 f"(preset '{preset}'); error bars ± 2 s.e.; points of one k/p are spread sideways.")
    return save(fig, NAME)
