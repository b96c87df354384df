"""TRAK on a trained network: TRAK against network LOO and linearized LOO, with the theory at the
after-kernel spectrum (figures/specs/fig_network.toml).

Runs `sims.network.run_network` (needs scikit-learn) and caches the result as JSON under
results/<preset>/fig_network/, keyed by a content hash of all the arguments.
"""

from __future__ import annotations

import json
import tomllib

import matplotlib.pyplot as plt
import numpy as np

from ._common import COLORS, SPECS, add_caption, results_dir, save

NAME = "fig_network"


def _run_cached(store, **kwargs):
    import hashlib

    from sims.network import run_network
    from sims.runs.store import RESULTS_SCHEMA, atomic_write_text

    key = json.dumps({**kwargs, "schema": RESULTS_SCHEMA}, sort_keys=True)
    store.mkdir(parents=True, exist_ok=True)
    path = store / f"network_{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    if path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            pass
    out = run_network(**kwargs)
    atomic_write_text(path, json.dumps(out))
    return out


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    raw = tomllib.loads((SPECS / f"{NAME}.toml").read_text())
    fig_cfg, pre = raw["figure"], raw["presets"][preset]
    res = _run_cached(results_dir() / preset / NAME, hidden=pre["hidden"], n_train=pre["n_train"],
                      n_test=pre["n_test"], kappas=pre["kappas"], n_projs=pre["n_projs"], lam=fig_cfg["lam"],
                      lam_trak=fig_cfg["lam_trak"], draws=pre["draws"], seed=fig_cfg["seed"], check_points=0)
    c = res["config"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    shades = ("#b3acd9", "#7570b3", "#2c1d6b")
    for ax, metric in zip(axes, ("spearman", "pearson")):
        for j, M in enumerate(c["n_projs"]):
            rows = [g for g in res["trak"] if g["n_proj"] == M and g["lam_trak"] == fig_cfg["lam_trak"][0]]
            x = [g["kappa"] for g in rows]
            col = shades[min(j + (len(shades) - len(c["n_projs"])), len(shades) - 1)]
            for truth, fill in (("network_loo", col), ("linearized_loo", "white")):
                m = [g["estimators"]["trak"][truth][metric]["mean"] for g in rows]
                se = [g["estimators"]["trak"][truth][metric]["se"] for g in rows]
                ok = [i for i, v in enumerate(m) if v is not None]
                ax.errorbar([x[i] for i in ok], [m[i] for i in ok], yerr=[2 * se[i] for i in ok], fmt="o",
                            mfc=fill, color=col, ms=5, label=f"M = {M}, vs {truth.replace('_', ' ')}")
            th = [(g["kappa"], g.get("theory", {}).get("trak", {}).get(metric)) for g in rows]
            th = [(k, v) for k, v in th if v is not None]
            if th:
                ax.plot(*zip(*th), color=col, lw=1.2)
        gap = res["linearization_gap"][metric]["mean"]
        ax.axhline(gap, color=COLORS["loo"], ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("k/p")
        ax.set_title(f"{metric.capitalize()} (H = {c['hidden']}, p = {c['p']}, n = {c['n_train']})", fontsize=9)
    axes[0].set_ylabel("correlation of TRAK with LOO")
    axes[0].set_ylim(0, 1.02)
    axes[0].legend(fontsize=6.5, loc="lower right")
    fig.suptitle("TRAK on a trained network: network LOO versus linearized LOO", fontsize=11)
    add_caption(fig, raw["description"] + f"  {c['n_test']} test points × {c['draws']} projection draws "
                 f"(preset '{preset}'); error bars ± 2 s.e.")
    return save(fig, NAME)
