"""The conditional theory's ground truth on a user's own data: the fit, exact LOO (or the Newton
step) on every training point, and TRAK computed with real sketches (Monte Carlo over P).

`theory.conditional` predicts TRAK's metrics against a truth on fixed data, the projection being
the only randomness; this module measures them: `fit_and_truth` gives g, w and the truth,
`sketch_monte_carlo` averages the metrics of `reps` independent TRAK scores (each an average of M
sketches, exactly as `sims.engine.estimators` computes TRAK in a simulation). Both work on the
user's scale: lam and lam_T enter the objective and the Gram as they are.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import numpy as np

from theory.errors import InvalidParameterError, NotConvergedError
from theory.families import Family, get_family
from theory.numerics import enable_float64

TRUTHS = ("loo", "ns")


class FitTruth(NamedTuple):
    """A ridge GLM fitted on (X, y) and its influences on the test rows X0 (each T x n)."""

    beta: np.ndarray
    g: np.ndarray
    w: np.ndarray
    influence: dict          # "if", "ns" and, when computed, "loo"


def fit_and_truth(X, y, X0, *, family: Family | str, lam: float, truth: str = "loo", tol: float = 1e-10,
                  offset=None, progress=None) -> FitTruth:
    """Fit the ridge GLM (damped Newton, `sims.engine.fit`), then IF and NS exactly and, with
    truth = "loo", exact leave-one-out for every training point (`sims.engine.loo.exact_loo`,
    agreeing with refits to 1e-8). `offset` (n,): a GLM with eta = X beta + offset (the linearized
    network). `progress(count)` is called as LOO points finish. `family`: a `Family` or its name."""
    from ..engine.estimators import if_ns_influence, if_ns_influence_kernel
    from ..engine.fit import check_fit, newton_fit
    from ..engine.loo import exact_loo
    from ..engine.simulate import _inverse_and_product

    enable_float64()
    family = get_family(family)
    if truth not in TRUTHS:
        raise InvalidParameterError(f"truth must be one of {', '.join(TRUTHS)}, got {truth!r}.")
    if not lam > 0:
        raise InvalidParameterError(f"lam must be > 0, got {lam!r}.")
    Xd, yd, X0d = (jax.device_put(np.asarray(a, dtype=np.float64)) for a in (X, y, X0))
    od = None if offset is None else jax.device_put(np.asarray(offset, dtype=np.float64))
    fit = check_fit(newton_fit(Xd, yd, lam, family=family, tol=min(tol, 1e-10), offset=od), Xd, yd, lam, family)
    n, p = Xd.shape
    A, XA, finite = _inverse_and_product(Xd, fit.w, lam)
    if not bool(finite):
        raise NotConvergedError("the Hessian at the fitted coefficients is numerically singular; use a larger lam.")
    if n < p:
        IF, NS, _ = if_ns_influence_kernel(Xd, X0d, fit.g, fit.w, lam)
    else:
        IF, NS, _ = if_ns_influence(Xd, X0d, fit.g, fit.w, A, XA)
    influence = {"if": np.asarray(IF), "ns": np.asarray(NS)}
    if truth == "loo":
        influence["loo"] = np.asarray(exact_loo(family, Xd, yd, X0d, fit, A, lam, XA=XA, tol=tol,
                                                progress=progress, offset=od).values)
    return FitTruth(np.asarray(fit.beta), np.asarray(fit.g), np.asarray(fit.w), influence)


def sketch_monte_carlo(X, X0, g, w, truth, *, k: int, lam_trak: float, n_proj: int = 1, reps: int = 32,
                       seed: int = 0, projection: str = "gaussian", variants: bool = False) -> dict:
    """Metrics of the core sketched estimators (and, with variants, every sketched one) against `truth` (T x n)
    over `reps` independent draws of M = n_proj sketches each: {estimator: {metric: {"mean", "se",
    "rows"}}}, the mean over draws and test rows, its standard error from the spread of the
    per-draw row means (the draws are independent; the rows share them), and the per-row means."""
    from ..engine.estimators import SKETCHED, estimator_group, projected_influence, variant_influence
    from ..engine.metrics import row_metrics

    enable_float64()
    if reps < 2:
        raise InvalidParameterError(f"reps must be >= 2 for a standard error, got {reps}.")
    Xd, X0d, gd, wd = (jax.device_put(np.asarray(a, dtype=np.float64)) for a in (X, X0, g, w))
    L = jax.device_put(np.asarray(truth, dtype=np.float64))
    top_m = max(1, int(round(0.05 * Xd.shape[0])))
    per = {}
    for rep in range(reps):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), rep)
        if variants:
            scores = variant_influence(key, Xd, X0d, gd, wd, lam_trak, k=k, n_proj=n_proj, projection=projection,
                                       names=SKETCHED)
        else:
            scores = projected_influence(key, Xd, X0d, gd, lam_trak, k=k, n_proj=n_proj, projection=projection,
                                         names=tuple(e for e in estimator_group("core") if e in SKETCHED))
        for name, S in scores.items():
            S = jax.device_put(np.asarray(S))
            met = row_metrics(S, L, top_m=top_m)
            for m in ("pearson", "spearman", "rel_error", "scale"):
                per.setdefault(name, {}).setdefault(m, []).append(np.asarray(met[m]))
    out = {}
    for name, mets in per.items():
        out[name] = {}
        for m, vals in mets.items():
            vals = np.stack(vals)                        # reps x T
            if not np.all(np.isfinite(vals)):
                raise NotConvergedError(f"{name}'s {m} is not finite for some sketch (singular Gram; use lam_trak > 0).")
            draw_means = vals.mean(axis=1)
            out[name][m] = {"mean": float(vals.mean()), "se": float(draw_means.std(ddof=1) / math.sqrt(reps)),
                            "rows": vals.mean(axis=0).tolist()}
    return out


# ------------------------------------------------------------------------------- validation
class Case(NamedTuple):
    """A data set for validating the conditional theory: training rows (X, y), test rows X0, the
    family and lam of the fit, an optional offset (the linearized network), and what the truth is."""

    name: str
    family: str
    X: np.ndarray
    y: np.ndarray
    X0: np.ndarray
    lam: float
    offset: np.ndarray | None = None
    truth_label: str = "exact LOO"
    gaussian_design: dict | None = None     # model parameters of a Gaussian design (for theory.predict)


def dataset_case(name: str, *, n_test: int = 50, seed: int = 0, lam: float = 0.1) -> Case:
    """A real dataset of `sims.runs.real` (standardized features / sqrt(p)), n_test rows held out."""
    from .real import load

    d = load(name)
    perm = np.random.default_rng(seed).permutation(len(d.y))
    te, tr = perm[:n_test], perm[n_test:]
    return Case(name, d.family, d.X[tr], d.y[tr], d.X[te], lam)


def network_case(*, hidden: int = 6, n_train: int = 200, n_test: int = 50, seed: int = 0, lam: float = 4.0) -> Case:
    """The after-kernel features of the trained perceptron of `sims.network` (logistic GLM in phi
    with the offset f - phi^T theta_hat): exact LOO of this GLM is the network's linearized LOO."""
    from ..network.experiment import trained_network

    net = trained_network(hidden=hidden, n_train=n_train, n_test=n_test, lam=lam, seed=seed)
    return Case(f"network H={hidden}", "logistic", np.asarray(net.Phi), np.asarray(net.data.y, float),
                np.asarray(net.Phi0), lam, np.asarray(net.offset), "linearized LOO")


def gaussian_case(*, family: str = "logistic", p: int = 300, delta: float = 2.0, gamma: float = 1.0,
                  sigma: float = 0.5, lam: float = 0.1, n_test: int = 50, seed: int = 0) -> Case:
    """An isotropic Gaussian design of docs/conventions.md (x ~ N(0, I/p), beta* ~ N(0, gamma^2))."""
    from ..engine.data import make_data

    enable_float64()
    n = int(round(delta * p))
    d = make_data(jax.random.PRNGKey(seed), family=family, n=n, p=p, n_test=n_test, gamma=gamma, sigma=sigma)
    return Case(f"gaussian design ({family}, p = {p}, n/p = {delta:g})", family, np.asarray(d.X), np.asarray(d.y),
                np.asarray(d.X0), lam, None, "exact LOO",
                dict(family=family, delta=delta, lam=lam, gamma=gamma, sigma=sigma))


def tolerance(n: int, d_eff: float) -> float:
    """The bar of the validation: 0.01 where n >= 1000 and d_eff >= 50, else 0.02."""
    return 0.01 if n >= 1000 and d_eff >= 50 else 0.02


def validate_case(case: Case, *, ks=None, lam_traks=None, n_projs=(1, 4, 16), reps: int = 32, seed: int = 1,
                  estimators=("trak",), metrics=("spearman", "pearson"), projection: str = "gaussian",
                  progress=None) -> dict:
    """The conditional theory against TRAK with `reps` real sketches per point on the same data and
    truth. Default grid: k geometric in [10, rank - 1] (4 values), lam_T in {0, 0.1 tr(G)/p}.
    Returns {"case", "n", "p", "rank", "d_eff", "tolerance", "rows"}; each row holds the theory,
    the Monte-Carlo mean and s.e., their difference and whether it is within the tolerance."""
    from theory.conditional import ConditionalModel

    ft = fit_and_truth(case.X, case.y, case.X0, family=case.family, lam=case.lam, offset=case.offset)
    L = ft.influence["loo"]
    model = ConditionalModel(case.X, ft.g, case.X0, L, w=ft.w, lam=case.lam)
    n, p = case.X.shape
    sw = model.bases["weighted"].s
    d_eff = float(np.sum(sw / (sw + case.lam)))
    tol = tolerance(n, d_eff)
    if ks is None:
        ks = sorted({int(round(v)) for v in np.geomspace(10, model.rank - 1, 4)})
    if lam_traks is None:
        lam_traks = (0.0, 0.1 * float(np.sum(np.asarray(case.X, float) ** 2)) / p)
    variants = any(e != "trak" for e in estimators)
    rows = []
    for lt in lam_traks:
        for k in ks:
            pts = model.predict(k, lt, list(n_projs), projection=projection, estimators=list(estimators))
            for pt in pts:
                M = pt["n_proj"]
                mc = sketch_monte_carlo(case.X, case.X0, ft.g, ft.w, L, k=k, lam_trak=lt, n_proj=M, reps=reps,
                                        seed=seed, projection=projection, variants=variants)
                for est in estimators:
                    for met in metrics:
                        th, sim = pt["estimators"][est][met]["mean"], mc[est][met]
                        diff = th - sim["mean"]
                        rows.append(dict(estimator=est, n_proj=M, k=k, lam_trak=lt, metric=met, theory=th,
                                         theory_error=pt["spearman_error"][est] if met == "spearman" else 0.0,
                                         mc=sim["mean"], mc_se=sim["se"], diff=diff, ok=bool(abs(diff) <= tol)))
                if progress:
                    progress(1)
    exact = {e: {m: v["mean"] for m, v in model.exact_estimators()[e].items()} for e in ("if", "ns")}
    return dict(case=case.name, family=case.family, truth=case.truth_label, n=n, p=p, rank=model.rank,
                d_eff=d_eff, tolerance=tol, lam=case.lam, projection=projection, reps=reps, exact=exact, rows=rows)


# ------------------------------------------------------------------------------ universality
def gaussian_twin(X, X0, beta, *, family: Family, sigma: float, key):
    """A Gaussian design with the second moments of the real rows and the same truth: rows of X
    and X0 iid N(0, X^T X / n) (drawn with jax.random from `key`), labels from the family at the
    signal x^T beta (sigma for the gaussian family)."""
    n, p = X.shape
    G = np.asarray(X, float).T @ np.asarray(X, float) / n
    s, U = np.linalg.eigh(G)
    root = (U * np.sqrt(np.clip(s, 0.0, None))) @ U.T
    k_x, k_x0, k_y = jax.random.split(key, 3)
    Xg = np.asarray(jax.random.normal(k_x, (n, p), dtype=np.float64)) @ root
    X0g = np.asarray(jax.random.normal(k_x0, (X0.shape[0], p), dtype=np.float64)) @ root
    yg = np.asarray(family.sample(k_y, jax.device_put(Xg @ beta), sigma), dtype=np.float64)
    return Xg, yg, X0g


def universality_study(name: str, *, n_test: int = 30, lam: float = 0.1, lam_trak: float = 0.0,
                       ks_theory=None, ks_mc=None, reps: int = 8, seed: int = 0) -> dict:
    """Where the Gaussian-design theory's optimism on real features comes from (fig_universality).

    On one dataset of `sims.runs.real` (n_test rows held out, the fit on the rest), Spearman of TRAK
    (M = 1) with exact LOO against k:
      gaussian_theory      `theory.predict_curve` at the training rows' spectrum and plug-in truth
                           (what `trak-sim plan --method gaussian` predicts);
      conditional_theory   `theory.conditional` on the real rows, their g and exact LOO;
      real                 TRAK with `reps` real sketches on the real rows (mean, s.e.);
      gaussian_twin        the same on a Gaussian design with the rows' second moments and the
                           fitted coefficients as truth (`gaussian_twin`), with its own exact LOO;
      twin_conditional     the conditional theory on that Gaussian design.
    """
    from theory.conditional import ConditionalModel
    from theory.prediction import predict_curve

    from .features import feature_spectrum, suite_summary

    case = dataset_case(name, n_test=n_test, seed=seed, lam=lam)
    X, y, X0 = case.X, case.y, case.X0
    n, p = X.shape
    family = get_family(case.family)
    ft = fit_and_truth(X, y, X0, family=family, lam=lam)
    model = ConditionalModel(X, ft.g, X0, ft.influence["loo"])
    top = model.rank - 1 if lam_trak == 0 else p
    ks_theory = sorted({int(round(v)) for v in np.geomspace(2, top, 24)}) if ks_theory is None else list(ks_theory)
    ks_mc = sorted({int(round(v)) for v in np.geomspace(3, top, 5)}) if ks_mc is None else list(ks_mc)
    spec = feature_spectrum(X, method="exact")
    sm = suite_summary(X, y, family, spec, ft.beta)
    gauss = predict_curve("kappa", [k / p for k in ks_theory], spectrum=sm["s"], theta=sm["theta"],
                          family=family, delta=n / p, lam=lam / sm["c2"], lam_trak=lam_trak / sm["c2"],
                          gamma=sm["gamma"], sigma=sm["sigma"])["estimators"]["trak"]["spearman"]
    cond = [model.predict(k, lam_trak, 1, estimators=["trak"], seed=seed)["estimators"]["trak"]["spearman"]["mean"]
            for k in ks_theory]
    real = [sketch_monte_carlo(X, X0, ft.g, ft.w, ft.influence["loo"], k=k, lam_trak=lam_trak, reps=reps,
                               seed=seed)["trak"]["spearman"] for k in ks_mc]
    Xg, yg, X0g = gaussian_twin(X, X0, ft.beta, family=family, sigma=sm["sigma"],
                                key=jax.random.PRNGKey(seed + 1))
    tg = fit_and_truth(Xg, yg, X0g, family=family, lam=lam)
    twin_model = ConditionalModel(Xg, tg.g, X0g, tg.influence["loo"])
    twin = [sketch_monte_carlo(Xg, X0g, tg.g, tg.w, tg.influence["loo"], k=k, lam_trak=lam_trak, reps=reps,
                               seed=seed)["trak"]["spearman"] for k in ks_mc]
    twin_cond = [twin_model.predict(k, lam_trak, 1, estimators=["trak"], seed=seed)["estimators"]["trak"]
                 ["spearman"]["mean"] for k in ks_theory]
    strip = lambda d: {"mean": d["mean"], "se": d["se"]}  # noqa: E731
    return dict(name=name, family=case.family, n=n, p=p, rank=model.rank, n_test=n_test, lam=lam,
                lam_trak=lam_trak, reps=reps, ks_theory=ks_theory, ks_mc=ks_mc,
                gaussian_theory=[float(v) for v in gauss], conditional_theory=cond,
                real=[strip(r) for r in real], gaussian_twin=[strip(r) for r in twin], twin_conditional=twin_cond,
                plug_in={"gamma": sm["gamma"], "sigma": sm["sigma"]})
