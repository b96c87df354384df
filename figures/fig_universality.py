"""Universality ablation: Gaussian-design theory, conditional theory, TRAK on the real rows and on
their Gaussian twin (figures/specs/fig_universality.toml; `sims.runs.conditional.universality_study`).

Each dataset's study is cached as JSON under results/<preset>/fig_universality/, keyed by a content
hash of its arguments.
"""

from __future__ import annotations

import tomllib

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter, ScalarFormatter

from ._common import COLORS, SPECS, add_caption, cached_json, results_dir, save

NAME = "fig_universality"
COST = 40   # seconds, quick preset from scratch on 2 cores


def _study_cached(store, **kwargs):
    from sims.runs.conditional import universality_study

    return cached_json(store, kwargs["name"], universality_study, **kwargs)


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    raw = tomllib.loads((SPECS / f"{NAME}.toml").read_text())
    cfg, pre = raw["figure"], raw["presets"][preset]
    store = results_dir() / preset / NAME
    datasets = cfg["datasets"]
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 4.2), sharey=True)
    trak = COLORS["trak"]
    for ax, name in zip(np.atleast_1d(axes), datasets):
        st = _study_cached(store, name=name, n_test=pre["n_test"], lam=cfg["lam"], lam_trak=cfg["lam_trak"],
                           reps=pre["reps"], seed=cfg["seed"])
        kt, km = st["ks_theory"], st["ks_mc"]
        ax.plot(kt, st["gaussian_theory"], color="#1f78b4", ls="--", label="Gaussian-design theory")
        ax.plot(kt, st["conditional_theory"], color=trak, label="conditional theory (real rows)")
        ax.plot(kt, st["twin_conditional"], color="#888888", ls=":", lw=1.3, label="conditional theory (twin)")
        real = np.array([[r["mean"], r["se"]] for r in st["real"]])
        twin = np.array([[r["mean"], r["se"]] for r in st["gaussian_twin"]])
        ax.errorbar(km, real[:, 0], yerr=2 * real[:, 1], fmt="o", color=trak, ms=5, label="TRAK, real rows")
        ax.errorbar(km, twin[:, 0], yerr=2 * twin[:, 1], fmt="o", mfc="white", color="#1f78b4", ms=5,
                    label="TRAK, Gaussian twin")
        ax.set_xscale("log")
        ax.set_xticks([t for t in (2, 5, 10, 20, 50, 100, 200, 500) if kt[0] <= t <= kt[-1]])
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("projection size k")
        ax.set_title(f"{name} ({st['family']}, n = {st['n']}, p = {st['p']})", fontsize=9)
    axes[0].set_ylabel("Spearman corr. of TRAK with exact LOO")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Real features are not Gaussian: the conditional theory removes the Gaussian theory's optimism",
                 fontsize=11)
    add_caption(fig, raw["description"] + f"  {pre['reps']} sketches per point, {pre['n_test']} test rows "
                 f"(preset '{preset}'); error bars ± 2 s.e.")
    return save(fig, NAME)
