"""Scatter of TRAK and IF against exact LOO for one test point, with the predicted slopes."""

from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np

from ._common import add_caption, COLORS, LABELS, SPECS, model_of, save

NAME = "fig_scatter"


def make(preset: str = "quick", progress: bool = True) -> list[str]:
    from scipy import stats

    from sims import run_replicate
    from sims.runs.sweep import load_spec
    from theory import predict

    spec = load_spec(SPECS / f"{NAME}.toml", preset=preset)
    sp = spec.configs[0]
    res = run_replicate(sp, 0, keep_influence=True)
    th = predict(**model_of(sp.asdict()))["estimators"]
    loo = res.influence["loo"][0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.3))
    for ax, est in zip(axes, ("trak", "if")):
        e = res.influence[est][0]
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

