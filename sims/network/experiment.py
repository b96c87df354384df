"""TRAK on a trained network: `run_network(...)`, one JSON-able dict (docs/network.md).

Pipeline: train the perceptron (`train`), exact network LOO of every training point from theta_hat
(`loo`), the linearized model's exact LOO (the logistic GLM in phi with offset
o_i = f(x_i; theta_hat) - phi_i^T theta_hat, by `sims.engine.loo.exact_loo`), the estimators
(`estimators`), then each estimator's metrics against both ground truths, the linearization gap
(linearized LOO scored against network LOO), the Gaussian-design theory at the after-kernel
spectrum and the theory conditional on the after-kernel features themselves (`theory.conditional`:
given Phi, g and the test features, the projection is the only randomness; against linearized LOO
and against network LOO).

Theory at the after-kernel. The GLM theory describes the linearized model with features
x~ = phi / c, c^2 = mean_j ||phi_j||^2 over all N images (so ||x~||^2 is about 1 as in the
repository's convention), coefficients beta = c theta, and penalties lam / c^2 and lamT / c^2. Its
inputs are the spectrum of p Sigma~ with Sigma~ = Phi_all^T Phi_all / (N c^2) (uncentred second
moments, which is what the Gram matrices use) and, as for the scikit-learn datasets of
`sims.runs.real`, a plug-in truth: the logistic ridge fit (penalty 0.1) of all N labels on x~,
giving gamma and the alignment theta_j. The offset is outside the theory.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory.numerics import enable_float64
from theory.errors import InvalidParameterError, TrakSimError
from theory.families import get_family

from ..engine.estimators import SKETCHED as TRAK_ESTIMATORS    # every sketched estimator of the registry
from ..engine.fit import Fit, check_fit, newton_fit
from ..runs.features import plug_in_summary
from ..engine.loo import exact_loo
from ..engine.metrics import default_top_m, mean_and_se, row_metrics
from .data import DATASETS, split
from .estimators import hessian_estimators, inverse, trak_estimators
from .loo import network_loo, refit_point
from .model import Shapes, distinct_units, features, init_params, logistic_parts, make_model
from .train import dense_hessian, train

FAMILY = get_family("logistic")      # the linearized network: a logistic GLM in the after-kernel features

FIXED_ESTIMATORS = ("if_exact", "ns_exact", "if_gn", "ns_gn", "newton_step")
PLUG_IN_LAM = 0.1


def _num(x):
    x = float(x)
    return x if math.isfinite(x) else None


def validate_network(*, dataset, hidden, n_train, n_test, kappas, n_projs, lam, lam_trak, draws, tol,
                     max_iter, check_points):
    def bad(msg):
        raise InvalidParameterError(msg)

    if dataset not in DATASETS:
        bad(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}.")
    for name, v, lo in (("hidden", hidden, 1), ("n_train", n_train, 10), ("n_test", n_test, 2),
                        ("draws", draws, 1), ("max_iter", max_iter, 1), ("check_points", check_points, 0)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
            bad(f"{name} must be an integer >= {lo}, got {v!r}.")
    if n_train + n_test > 1797:
        bad(f"digits has 1797 images, fewer than n_train + n_test = {n_train + n_test}.")
    if check_points > n_train:
        bad(f"check_points must be <= n_train = {n_train}, got {check_points}.")
    if not kappas or not n_projs or not lam_trak:
        bad("kappa, n_proj and lam_trak each need at least one value.")
    for k in kappas:
        if not (isinstance(k, (int, float)) and math.isfinite(k) and 0 < k <= 1):
            bad(f"kappa must be in (0, 1], got {k!r}.")
    for m in n_projs:
        if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 1:
            bad(f"n_proj must be an integer >= 1, got {m!r}.")
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam > 0):
        bad(f"lam must be a finite number > 0 (the optimum must be isolated), got {lam!r}.")
    for lt in lam_trak:
        if not (isinstance(lt, (int, float)) and math.isfinite(lt) and lt >= 0):
            bad(f"lam_trak must be a finite number >= 0, got {lt!r}.")
    if not (isinstance(tol, float) and 1e-14 <= tol < 1e-2):
        bad(f"tol must be in [1e-14, 1e-2), got {tol!r}.")


def _summary(est, truth, top_m, cols=None):
    """{metric: {mean, se}} of est (reps, T, n) against truth (T, n) over test points and draws."""
    if cols is not None:
        est, truth = est[..., cols], truth[:, cols]
    rows = [row_metrics(jnp.asarray(e), jnp.asarray(truth), top_m=top_m) for e in est]
    out = {}
    for m in rows[0]:
        vals = np.stack([np.asarray(r[m]) for r in rows])
        if not np.all(np.isfinite(vals)):
            out[m] = {"mean": None, "se": None}
        else:
            mean, se = mean_and_se(vals)
            out[m] = {"mean": mean, "se": se}
    return out


def _score(est, truths, top_m, pd_cols):
    out = {name: _summary(est, t, top_m) for name, t in truths.items()}
    if pd_cols is not None:
        out["network_loo_pd_only"] = _summary(est, truths["network_loo"], top_m, pd_cols)
    return out


def after_kernel_summary(shapes, theta, X_all, y_all):
    """(c2, spectrum, alignment theta_j, gamma) of the module docstring."""
    Phi_all = np.asarray(features(shapes, jnp.asarray(theta), jnp.asarray(X_all)))
    N, p = Phi_all.shape
    c2 = float(np.mean(np.sum(Phi_all**2, axis=1)))
    Xt = Phi_all / math.sqrt(c2)
    fit = check_fit(newton_fit(jnp.asarray(Xt), jnp.asarray(y_all), PLUG_IN_LAM, family=FAMILY), Xt, y_all,
                    PLUG_IN_LAM, FAMILY, what="the plug-in fit of the after-kernel")
    s, align, gamma = plug_in_summary(Xt, fit.beta)
    return c2, s, align, gamma


class TrainedNetwork(NamedTuple):
    """A trained perceptron and its linearization: logits f, g and w at theta_hat, the after-kernel
    features Phi (n x p) and Phi0 (T x p), and the offset f - Phi theta_hat of the linearized GLM."""

    data: object
    shapes: Shapes
    theta0: jax.Array
    theta: jax.Array
    trained: object
    k_proj: jax.Array
    f: jax.Array
    g: jax.Array
    w: jax.Array
    Phi: jax.Array
    Phi0: jax.Array
    offset: jax.Array


def trained_network(dataset: str = "digits", *, hidden: int = 6, n_train: int = 200, n_test: int = 10,
                    lam: float = 4.0, seed: int = 0, tol: float = 1e-10, lbfgs_iters: int = 2000,
                    max_iter: int = 200) -> TrainedNetwork:
    """Split, initialize and train the perceptron of `run_network` (same seed, same network), and
    its after-kernel features at theta_hat."""
    enable_float64()
    k_split, k_init, k_proj = jax.random.split(jax.random.PRNGKey(seed), 3)
    data = split(dataset, n_train, n_test, k_split)
    shapes = Shapes(data.X.shape[1], hidden)
    X, y, X0 = jnp.asarray(data.X), jnp.asarray(data.y), jnp.asarray(data.X0)
    theta0 = init_params(k_init, shapes)
    tr = train(shapes, theta0, X, y, lam, tol=tol, lbfgs_iters=lbfgs_iters, max_iter=max_iter)
    theta = jnp.asarray(tr.theta)
    _, f_batch = make_model(shapes)
    f = f_batch(theta, X)
    _, g, w = logistic_parts(y, f)
    Phi, Phi0 = features(shapes, theta, X), features(shapes, theta, X0)
    return TrainedNetwork(data, shapes, theta0, theta, tr, k_proj, f, g, w, Phi, Phi0, f - Phi @ theta)


def run_network(dataset: str = "digits", *, hidden: int = 6, n_train: int = 200, n_test: int = 10,
                kappas=(0.1, 0.5, 1.0), n_projs=(1, 4), lam: float = 4.0, lam_trak=(0.0, 1.0),
                draws: int = 2, seed: int = 0, tol: float = 1e-10, max_iter: int = 200,
                lbfgs_iters: int = 2000, check_points: int = 2, theory: bool = True,
                projection: str = "gaussian") -> dict:
    """Train, compute network and linearized LOO, score every estimator against both (module
    docstring). Returns {"config", "training", "loo", "linearization_gap", "estimators", "trak",
    "theory_inputs", "checks", "timings"}: see docs/network.md for the layout."""
    enable_float64()
    kappas, n_projs, lam_trak = list(kappas), list(n_projs), list(lam_trak)
    validate_network(dataset=dataset, hidden=hidden, n_train=n_train, n_test=n_test, kappas=kappas,
                     n_projs=n_projs, lam=lam, lam_trak=lam_trak, draws=draws, tol=tol, max_iter=max_iter,
                     check_points=check_points)
    times = {}
    t0 = time.perf_counter()
    net_ = trained_network(dataset, hidden=hidden, n_train=n_train, n_test=n_test, lam=lam, seed=seed, tol=tol,
                           lbfgs_iters=lbfgs_iters, max_iter=max_iter)
    data, shapes, theta0, theta, tr, k_proj = net_.data, net_.shapes, net_.theta0, net_.theta, net_.trained, net_.k_proj
    p = shapes.p
    X, y, X0 = jnp.asarray(data.X), jnp.asarray(data.y), jnp.asarray(data.X0)
    times["train_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    _, f_batch = make_model(shapes)
    f, g, w, Phi, Phi0 = net_.f, net_.g, net_.w, net_.Phi, net_.Phi0
    ones = jnp.ones(n_train)
    H_exact = dense_hessian(shapes, theta, X, y, lam, ones)
    H_gn = (Phi.T * w) @ Phi + lam * jnp.eye(p)
    A_exact, A_gn = inverse(H_exact), inverse(H_gn)
    net = network_loo(shapes, theta, X, y, X0, lam, A_exact, Phi, g, w, tol=tol, newton_iters=max_iter)
    times["network_loo_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    offset = net_.offset
    fit = Fit(theta, f, g, w, Phi.T @ g + lam * theta, jnp.asarray(0), jnp.asarray(0.0), jnp.asarray(0, jnp.int32))
    lin = exact_loo(FAMILY, Phi, y, Phi0, fit, A_gn, lam, tol=tol, offset=offset)
    times["linearized_loo_s"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    truths = {"network_loo": net.values, "linearized_loo": np.asarray(lin.values)}
    top_m = default_top_m(n_train)
    pd_cols = np.flatnonzero(~net.not_pd) if net.not_pd.any() else None
    fixed = hessian_estimators(Phi, Phi0, g, w, A_exact, A_gn)
    fixed["newton_step"] = net.newton_step
    estimators = {name: _score(fixed[name][None], truths, top_m, pd_cols) for name in FIXED_ESTIMATORS}
    gap = _summary(truths["linearized_loo"][None], truths["network_loo"], top_m)

    theory_inputs, summary = None, None
    if theory:
        try:
            c2, spec, align, gamma = after_kernel_summary(shapes, theta, data.X_all, data.y_all)
        except TrakSimError as e:          # the plug-in fit's named error: no theory for this network
            theory_inputs = {"error": str(e)}
        else:
            theory_inputs = {"c2": c2, "gamma_plugin": gamma, "lam_theory": lam / c2,
                             "effective_rank": float(spec.sum() ** 2 / (spec**2).sum()),
                             "top_eigenvalues": [float(v) for v in spec[:5]]}
            summary = (spec, align, gamma, c2)

    conditional = _conditional_models(Phi, g, w, Phi0, truths) if theory else None
    grid = []
    for lt in lam_trak:
        for kappa in kappas:
            k = max(1, int(round(kappa * p)))
            for M in n_projs:
                per_draw = [trak_estimators(jax.random.fold_in(k_proj, dr), Phi, Phi0, g, w, lt, k=k, n_proj=M,
                                            projection=projection) for dr in range(draws)]
                entry = {"kappa": kappa, "k": k, "n_proj": M, "lam_trak": lt,
                         "estimators": {name: _score(np.stack([d[name] for d in per_draw]), truths, top_m, pd_cols)
                                        for name in TRAK_ESTIMATORS}}
                if summary is not None:
                    entry["theory"] = _theory(summary, n_train / p, kappa, lam, lt, M)
                if conditional is not None:
                    entry["conditional"] = _conditional(conditional, k, lt, M)
                grid.append(entry)
    times["estimators_s"] = time.perf_counter() - t3

    t4 = time.perf_counter()
    checks = _checks(shapes, theta0, theta, X, y, X0, lam, tol, net, g, check_points, lbfgs_iters, max_iter) \
        if check_points else {"points": []}
    times["checks_s"] = time.perf_counter() - t4
    times["total_s"] = time.perf_counter() - t0

    units = distinct_units(shapes, tr.theta)
    config = {"dataset": dataset, "hidden": hidden, "d": shapes.d, "p": p, "n_train": n_train, "n_test": n_test,
              "delta": n_train / p, "kappas": kappas, "n_projs": n_projs, "lam": lam, "lam_trak": lam_trak,
              "draws": draws, "seed": seed, "tol": tol, "projection": projection, "top_m": top_m}
    training = {"rel_grad": tr.rel_grad, "newton_iters": tr.newton_iters, "lbfgs_iters": tr.lbfgs_iters,
                "hessian_min_eig": tr.min_eig,
                "hessian_min_eig_gn": float(jnp.linalg.eigvalsh(H_gn)[0]),
                "train_accuracy": float(np.mean((np.asarray(f) > 0) == (data.y > 0.5))),
                "test_accuracy": float(np.mean((np.asarray(f_batch(theta, X0)) > 0) == (data.y0 > 0.5))),
                "units": units}
    loo = {"not_pd_points": [int(i) for i in np.flatnonzero(net.not_pd)],
           "fallback_points": [int(i) for i in np.flatnonzero(net.fallback)],
           "fallback_min_eig": {str(k): v for k, v in net.fallback_min_eig.items()},
           "newton_steps_mean": float(net.iters.mean()), "newton_steps_max": int(net.iters.max()),
           "rel_resid_max": float(net.rel_resid.max()),
           "linearized_chord_steps_mean": float(np.mean(lin.n_iter)),
           "network_loo_rms": float(np.sqrt(np.mean(net.values**2))),
           "linearized_loo_rms": float(np.sqrt(np.mean(np.asarray(lin.values) ** 2)))}
    return {"config": config, "training": training, "loo": loo, "linearization_gap": gap,
            "estimators": estimators, "trak": grid, "theory_inputs": theory_inputs, "checks": checks,
            "timings": times}


def _conditional_models(Phi, g, w, Phi0, truths):
    """The conditional theory (`theory.conditional`) on the after-kernel features, one model per
    truth (sharing the eigenbases): TRAK's law over sketches given Phi, g and the test features."""
    from theory.conditional import ConditionalModel

    Phi, Phi0, g, w = (np.asarray(a, dtype=np.float64) for a in (Phi, Phi0, g, w))
    models, bases = {}, None
    for name in ("linearized_loo", "network_loo"):
        models[name] = ConditionalModel(Phi, g, Phi0, truths[name], w=w, bases=bases)
        bases = models[name].bases
    return models


def _conditional(models, k, lam_trak, n_proj):
    """{truth: {estimator: {metric: value}}} of the conditional theory at (k, lamT, M), or an error."""
    out = {}
    for truth, model in models.items():
        try:
            pt = model.predict(k, lam_trak, n_proj)
        except TrakSimError as e:
            out[truth] = {"error": str(e)}
            continue
        out[truth] = {est: {m: _num(v["mean"]) for m, v in row.items() if v is not None}
                      for est, row in pt["estimators"].items()}
    return out


def _theory(summary, delta, kappa, lam, lam_trak, n_proj):
    from theory import predict_spectrum

    spec, align, gamma, c2 = summary
    try:
        pred = predict_spectrum(spec, align, family=FAMILY, delta=delta, kappa=kappa, lam=lam / c2,
                                lam_trak=lam_trak / c2, gamma=gamma, n_proj=n_proj)
    except TrakSimError as e:
        return {"error": str(e)}
    return {est: {m: _num(v) for m, v in row.items()} for est, row in pred["estimators"].items()}


def _checks(shapes, theta0, theta, X, y, X0, lam, tol, net, g, count, lbfgs_iters, max_iter):
    """For the `count` training points of largest |g_i|: dense trust-region Newton from theta_hat
    (must equal network LOO) and a from-scratch retrain from the original initialization (may land
    in another minimum; the objective values and test logits are compared)."""
    from .model import make_objective

    _, f_batch = make_model(shapes)
    F = make_objective(shapes)
    n = X.shape[0]
    f0 = f_batch(theta, X0)
    out = []
    for i in np.argsort(-np.abs(np.asarray(g)))[:count]:
        i = int(i)
        weights = jnp.asarray((np.arange(n) != i).astype(float))
        th_w, _, _ = refit_point(shapes, theta, X, y, lam, i, tol=min(tol, 1e-12), max_iter=max_iter)
        warm = np.asarray(f0 - f_batch(th_w, X0))
        min_eig = float(jnp.linalg.eigvalsh(dense_hessian(shapes, th_w, X, y, lam, weights))[0])
        scratch = train(shapes, theta0, X, y, lam, weights=weights, tol=tol, lbfgs_iters=lbfgs_iters,
                        max_iter=max_iter)
        th_s = jnp.asarray(scratch.theta)
        F_w, F_s = float(F(th_w, X, y, lam, weights)), float(F(th_s, X, y, lam, weights))
        diff_logit = float(jnp.max(jnp.abs(f_batch(th_w, X0) - f_batch(th_s, X0))))
        out.append({"i": i, "g_i": float(g[i]), "not_pd": bool(net.not_pd[i]),
                    "max_abs_diff_vs_warm_refit": float(np.max(np.abs(warm - net.values[:, i]))),
                    "loo_scale": float(np.max(np.abs(warm))), "warm_min_eig": min_eig,
                    "objective_warm": F_w, "objective_scratch": F_s,
                    "scratch_test_logit_max_diff": diff_logit,
                    "scratch_other_minimum": bool(diff_logit > 1e-6 * max(1.0, float(jnp.max(jnp.abs(f0)))))})
    return {"points": out, "scratch_other_minimum": sum(c["scratch_other_minimum"] for c in out),
            "scratch_lower": sum(c["scratch_other_minimum"] and c["objective_scratch"] < c["objective_warm"] - 1e-9
                                 for c in out)}
