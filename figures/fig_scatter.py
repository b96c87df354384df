"""Scatter of TRAK and IF against exact LOO for one test point, with the predicted slopes."""

from __future__ import annotations


import os

import matplotlib.pyplot as plt
import numpy as np

from ._common import COLORS, LABELS, SPECS, add_caption, model_of, results_dir, save, theory

NAME = "fig_scatter"
COST = 5   # seconds, quick preset from scratch on 2 cores (orders parallel drawing)


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    from scipy import stats

    from sims.runs.sweep import load_spec

    spec = load_spec(SPECS / f"{NAME}.toml", preset=preset)
    sp = spec.configs[0]
    influence = _first_test_point(sp, results_dir() / preset / NAME)
    th = theory("predict", **model_of(sp.asdict()))["estimators"]
    loo = influence["loo"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.3))
    for ax, est in zip(axes, ("trak", "if")):
        e = influence[est]
        ax.scatter(e, loo, s=6, alpha=0.45, color=COLORS[est], edgecolors="none")
        lim = np.array([e.min(), e.max()])
        ax.plot(lim, th[est]["scale"] * lim, color="k", lw=1.3,
                label=f"predicted slope {th[est]['scale']:.2f}")
        ax.plot(lim, lim, color="0.5", lw=1, ls=":", label="y = x")
        pear, spear = stats.pearsonr(e, loo)[0], stats.spearmanr(e, loo)[0]
        ax.set_title(f"{LABELS[est]}: Pearson {pear:.3f} (theory {th[est]['pearson']:.3f}), "
                     f"Spearman {spear:.3f} ({th[est]['spearman']:.3f})", fontsize=9)
        ax.set_xlabel(f"{LABELS[est]} influence")
        ax.set_ylabel("exact LOO influence")
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"One test point, n = {sp.n} training points (p = {sp.p}): "
                 "values off by a factor, ranking kept", fontsize=11)
    add_caption(fig, spec.description)
    return save(fig, NAME)


def _first_test_point(sp, store) -> dict:
    """LOO, TRAK and IF influences of replicate 0's first test point, cached in `store` by the
    replicate's content hash (as the sweep store caches its tables)."""
    from sims import run_replicate
    from sims.runs.store import config_hash

    path = store / f"influence-{config_hash(sp.asdict(), 0)}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in ("loo", "trak", "if")}
    except (OSError, KeyError, ValueError):
        pass
    res = run_replicate(sp, 0, keep_influence=True)
    influence = {k: np.asarray(res.influence[k][0]) for k in ("loo", "trak", "if")}
    store.mkdir(parents=True, exist_ok=True)
    tmp = store / f".{path.name}.{os.getpid()}.tmp.npz"
    np.savez(tmp, **influence)
    os.replace(tmp, path)
    return influence

