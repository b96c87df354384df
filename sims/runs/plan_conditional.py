"""`trak-sim plan --method conditional`: k and M for TRAK from the theory conditional on the user's
own rows (`theory.conditional`, docs/theory.md §11), where the projection is the only randomness.

Pipeline (docs/plan.md): split test rows off (a seeded hold-out of min(200, n/10) rows, or --test);
eigenbasis of X^T X on the training rows (it also preconditions the fit); fit the ridge GLM
(`features.fit_glm`) or take beta; IF and NS exactly (from H's Cholesky factor when p <= n, else in
the eigenbasis); the truth (exact LOO when affordable, else the Newton step, with NS's agreement
with exact LOO on a subsample reported, `loo_points`); then the conditional theory along k for
every M, the recommendation, the best lam_T, the k ~ d_eff rule and, with `check`, TRAK with real
sketches at the recommended k. lam and lam_T are on the user's scale: the conditional theory needs
no mapping to suite units. On the top-eigenpair path the training rows stay where they are (a
memory map stays mapped, `theory.rows.Rows`) and every product with them runs by row blocks.
"""

from __future__ import annotations

import math
import time

import numpy as np

from theory.errors import EstimatorDoesNotExistError, InvalidParameterError, NotConvergedError
from theory.estimators import CONDITIONAL, estimators_for
from theory.rows import BLOCK_BYTES

TRUTHS = ("auto", "loo", "ns")
LOO_FLOPS = 1e10                 # flop/s assumed by the affordability rule (2 cores, float64, with margin)
LOO_AUTO_SECONDS = 30.0          # auto takes exact LOO when its estimate is at most this
NS_CHECK_POINTS = 100            # training points of the NS-vs-LOO agreement when the truth is NS
LAM_T_FACTORS = np.logspace(-4, 1, 6)   # best lam_T: {0} and these times the mean eigenvalue tr(G)/p
SCAN_K = 8                       # k values of the best-lam_T scan (a subgrid of the curve's)
K_POINTS = 20                    # default k grid: geometric from 1 to the largest valid k
K_REL_TOL = 0.02                 # the recommended k is refined by bisection to 2% (or 1)
SCAN_ROWS = 50                   # test rows of the best-lam_T scan (its choice; the reported values use all)
VARIANT_MAX = 2000               # the weighted eigenbasis of trak_w/trak_wlev: min(n, p) up to this


CONDITIONAL_MAX = 8000           # min(n, p) up to which spectrum "auto" takes the exact eigenbasis (eigh ~1 min)
TOP_RANK = 500                   # the randomized path: eigenpairs computed, the rest by the tail model
TOP_ACCURATE = 0.6               # ... accurate (within 0.002, benchmarks/README.md) for k <= this times top


def conditional_path(n: int, p: int, spectrum: str = "auto") -> str:
    """"exact" (the exact eigenbasis; spectrum "exact", or "auto" with min(n, p) <= CONDITIONAL_MAX) or
    "top" (spectrum "randomized", or "auto" above: the top eigenpairs with the tail model of
    `theory.conditional.top_eigenbasis`, IF and NS by a Cholesky factor of H; needs p <= n)."""
    if spectrum == "exact" or (spectrum == "auto" and min(n, p) <= CONDITIONAL_MAX):
        return "exact"
    if n < p:
        raise InvalidParameterError(
            f"the randomized spectrum of --method conditional needs at least as many rows as features (n = {n}, "
            f"p = {p}): subsample features, use --spectrum exact (n <= {CONDITIONAL_MAX}) or --method gaussian.")
    return "top"


def conditional_memory(n: int, p: int, T: int, path: str = "exact", top: int = TOP_RANK,
                       in_memory: bool = False) -> int:
    """Bytes the conditional plan holds. Exact path: the training rows in float64, X U, its squares
    and its weighted copy while the closed forms' Grams are formed (n r each, r = min(n, p)), the
    eigenvectors and four r x r Grams, H and its factor (p <= n), and the T x n arrays of the law.
    Top path (the rows stay in the file, read by row blocks of `theory.rows`): H and its factor (2 p^2), the range finder (3 p l, l = top + 12, and
    X Q, n l), X U and its squares (2 n r), the tail model's products (n (r + 2T) while they are
    formed), about 12 T x n arrays (IF, NS, the truth's ranks, the law's means) and two row blocks;
    `in_memory` (an exact LOO truth, or --check, which hold the rows) adds 3 n p."""
    if path == "top":
        r, ell = top, top + 12
        held = 2 * p * p + 3 * p * ell + n * ell + 2 * n * r + n * (r + 2 * T) + 12 * T * n + p * (r + 2 * T + 1)
        return 8 * (held + (3 * n * p if in_memory else 0)) + 2 * BLOCK_BYTES
    r = min(n, p)
    return 8 * (n * p + 3 * n * r + p * r + 4 * r * r + 8 * T * n + (2 * p * p if p <= n else 0))


def _check_size(n: int, p: int, T: int, path: str, top: int, in_memory: bool = False) -> None:
    """One sentence when the conditional method is out of reach here."""
    from ..engine.simulate import _size, available_memory

    need = conditional_memory(n, p, T, path, top, in_memory)
    have, where = available_memory()
    if path == "exact" and min(n, p) > CONDITIONAL_MAX:
        raise InvalidParameterError(
            f"the exact eigenbasis of --method conditional is limited to min(n, p) <= {CONDITIONAL_MAX} (here "
            f"{min(n, p)}; eigh alone would take minutes): use --spectrum randomized (top eigenpairs and a tail "
            "model) or --method gaussian.")
    if need > 0.8 * have:
        what = " (with the rows in memory for exact LOO or --check)" if in_memory else ""
        raise InvalidParameterError(
            f"--method conditional needs about {_size(need)}{what} here ({where}: {_size(have)}) for n = {n}, "
            f"p = {p}: subsample rows, use --truth ns without --check, or --method gaussian (randomized spectra, "
            "streamed) for features this large.")


def loo_seconds(n: int, p: int) -> float:
    """Estimated seconds of exact LOO for all n points: the set-up X H^{-1} (2 n p^2 flops) and ~4
    gradient evaluations per point (8 n^2 p flops; benchmarks/README.md), at LOO_FLOPS."""
    return (8.0 * n * n * p + 2.0 * n * p * p) / LOO_FLOPS


def holdout_split(n: int, rows: int | None, seed: int):
    """(train, test) row indices: `rows` (default min(200, n // 10)) test rows drawn with jax.random."""
    import jax

    T = min(200, n // 10) if rows is None else rows
    if T < 2 or T > n // 2:
        raise InvalidParameterError(f"the hold-out must be between 2 and n/2 = {n // 2} rows, got {T} "
                                    f"(n = {n}; give test rows with --test instead).")
    perm = np.asarray(jax.random.permutation(jax.random.PRNGKey(seed), n))
    return np.sort(perm[T:]), np.sort(perm[:T])


def _spectrum_of(basis, trace: float):
    """A `features.Spectrum` (descending) from an eigenbasis (with a tail model: its top eigenpairs,
    then the modelled tail), for the fit's preconditioner."""
    from .features import Spectrum

    s = np.zeros(basis.p)
    values = basis.s if basis.tail is None else np.concatenate([basis.s, basis.tail])
    s[:values.size] = np.sort(values)[::-1]
    return Spectrum(s, basis.U[:, ::-1], trace, "exact" if basis.tail is None else "randomized", basis.rank)


def _truth(X, y, X0, *, family, lam, beta, g, w, IF, NS, truth, seed, progress, factor=None):
    """The truth (T x n), its name, the rule that chose it and NS's agreement with exact LOO."""
    import jax

    from .conditional import fit_and_truth

    n, p = X.shape
    est = loo_seconds(n, p)
    rule = (f"exact LOO when its estimate (8 n^2 p + 2 n p^2 flops at {LOO_FLOPS:.0e} flop/s = {est:.1f} s "
            f"here) is <= {LOO_AUTO_SECONDS:g} s, else the Newton step")
    use_loo = truth == "loo" or (truth == "auto" and est <= LOO_AUTO_SECONDS)
    agreement = None
    if use_loo:
        if est > LOO_AUTO_SECONDS and progress:
            print(f"exact LOO on {n} training points: about {est:.0f} s (estimate)", flush=True)
        bar = _bar(n, "exact LOO") if progress else None
        try:
            ft = fit_and_truth(X, y, X0, family=family, lam=lam, progress=bar.update if bar else None)
        finally:
            if bar is not None:
                bar.close()
        L = ft.influence["loo"]
        agreement = dict(points=n, spearman=_row_spearman(ft.influence["ns"], L))
        return L, "loo", rule, agreement
    m = min(NS_CHECK_POINTS, n)
    if m >= 3:
        pts = np.sort(np.asarray(jax.random.permutation(jax.random.PRNGKey(seed + 1), n))[:m])
        if factor is None:
            L_sub = _loo_points_engine(X, y, X0, family=family, lam=lam, beta=beta, g=g, w=w, points=pts)
            done = np.ones(m, dtype=bool)
        else:
            L_sub, done = loo_points(X, y, X0, family=family, lam=lam, beta=beta, g=g, w=w, factor=factor,
                                     points=pts)
        agreement = dict(points=int(done.sum()), spearman=_row_spearman(NS[:, pts[done]], L_sub[:, done]))
        if not done.all():
            agreement["unconverged"] = int((~done).sum())
    return NS, "ns", rule, agreement


def loo_points(X, y, X0, *, family, lam: float, beta, g, w, factor, points, tol: float = 1e-10,
               max_steps: int = 50):
    """Exact LOO of `points` only: (T x m) x0^T (beta_hat - beta_{-i}) (the convention of
    `sims.engine.loo.exact_loo`) and the points that reached the tolerance. The chord iteration of
    that module, on the coefficients: beta <- beta - H_{-i}^{-1} grad F_{-i}(beta) from beta_hat,
    with the leave-one-out Hessian at beta_hat applied by Sherman-Morrison through the plan's
    Cholesky factor of H (`theory.conditional.RidgeFactor`): H_{-i}^{-1} v = H^{-1} v + coef_i a_i
    (a_i^T v), a_i = H^{-1} x_i, coef_i = w_i / (1 - w_i h_i); its first step is the Newton step.
    The m points move together: a step is one pass over the row blocks (X B and X^T g(y, X B),
    4 n p m flops) and an m-column solve (2 p^2 m), so the rows are never held in float64. Stops a
    point when ||grad F_{-i}|| <= tol s_i (s_i = ||x_i|| |g_i| + 1e-4 rms(g), as the engine)."""
    from theory import rows
    from theory.families import get_family

    from ..engine.loo import gradient_scales

    fam = get_family(family)
    points = np.asarray(points)
    m = points.size
    Xi = rows.rows_at(X, points)                                         # m x p
    Ai = factor.solve(Xi.T)                                              # p x m: a_i = H^-1 x_i
    wi = w[points]
    coef = wi / (1.0 - wi * factor.h[points])
    scale, _ = gradient_scales(Xi, g, points)
    B = np.repeat(np.asarray(beta, dtype=np.float64)[:, None], m, axis=1)
    active = np.ones(m, dtype=bool)
    cols = np.arange(m)
    for _ in range(max_steps):
        grad = lam * B
        for i, blk in rows.blocks(X):
            G = np.array(fam.grad(y[i:i + blk.shape[0], None], blk @ B), dtype=np.float64)
            inside = (points >= i) & (points < i + blk.shape[0])
            G[points[inside] - i, cols[inside]] = 0.0                    # leave point i out of column i
            grad += blk.T @ G
        active &= ~(np.linalg.norm(grad, axis=0) <= tol * scale)
        if not active.any():
            break
        G, A = grad[:, active], Ai[:, active]
        B[:, active] -= factor.solve(G) + A * (coef[active] * np.sum(A * G, axis=0))      # H_{-i}^{-1} grad
    return np.asarray(X0, dtype=np.float64) @ (np.asarray(beta, dtype=np.float64)[:, None] - B), ~active


def _loo_points_engine(X, y, X0, *, family, lam, beta, g, w, points):
    """Exact LOO of `points` by the engine (`sims.engine.loo.exact_loo`), for n < p (no factor of H)."""
    import jax
    import jax.numpy as jnp

    from ..engine.fit import Fit
    from ..engine.loo import exact_loo
    from ..engine.simulate import _inverse_and_product

    Xd, yd, X0d = (jax.device_put(np.asarray(a, dtype=np.float64)) for a in (X, y, X0))
    bd, gd, wd = (jax.device_put(np.asarray(a, dtype=np.float64)) for a in (beta, g, w))
    A, XA, finite = _inverse_and_product(Xd, wd, lam)
    if not bool(finite):
        raise NotConvergedError("the Hessian at the fitted coefficients is numerically singular; use a larger lam.")
    fit = Fit(bd, Xd @ bd, gd, wd, Xd.T @ gd + lam * bd, jnp.asarray(0), jnp.asarray(0.0), jnp.asarray(0, jnp.int32))
    return np.asarray(exact_loo(family, Xd, yd, X0d, fit, A, lam, XA=XA, points=points).values)[:, points]


def _training_rows(X, index, path: str):
    """The training rows: in memory in float64 on the exact path; on the top path a `theory.rows.Rows`
    view of X (a memory map stays mapped: every product with it runs by row blocks)."""
    from theory.rows import Rows

    if path == "top":
        return Rows(X, index, finite=True)          # `features.check_features` has checked every row
    return np.asarray(X if index is None else X[index], dtype=np.float64)


def _row_spearman(S, L) -> float:
    from theory.conditional import exact_metrics, prepare_truth

    return exact_metrics(S, prepare_truth(L))["spearman"]["mean"]


def _bar(total, desc):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="pt", leave=False)


def plan_conditional(X, y, *, family: str, lam: float, lam_trak: float, target: float, metric: str, n_proj,
                     k_grid, beta=None, seed: int = 0, scan_lam_trak: bool = True, X_test=None,
                     holdout: int | None = None, truth: str = "auto", variants="auto", check: bool = False,
                     check_draws: int = 8, progress: bool = False, spectrum: str = "auto",
                     top: int = TOP_RANK) -> dict:
    """See the module docstring and `sims.runs.plan.plan` (which validates the common options).
    spectrum "randomized" (or "auto" with min(n, p) > CONDITIONAL_MAX): the top `top` eigenpairs and
    the tail model instead of the exact eigenbasis (accurate for k <= TOP_ACCURATE top; beyond, the
    recommendations are flagged)."""
    from theory.conditional import (ConditionalModel, eigenbasis, exact_metrics, hessian_effective_dimension,
                                    prepare_truth, ridge_influences, ridge_influences_direct)
    from theory import rows
    from theory.families import get_family

    from .features import fit_glm

    t_start = time.perf_counter()
    timings = {}
    if truth not in TRUTHS:
        raise InvalidParameterError(f"truth must be one of {', '.join(TRUTHS)}, got {truth!r}.")
    n_all, p = X.shape
    T_rows = X_test.shape[0] if X_test is not None else holdout if holdout is not None else min(200, n_all // 10)
    n_fit = n_all if X_test is not None else n_all - T_rows
    path = conditional_path(n_fit, p, spectrum)
    if path == "top" and not 1 <= top < p:
        raise InvalidParameterError(f"top must be between 1 and p - 1 = {p - 1}, got {top}.")
    _check_size(n_all, p, T_rows, path, top, in_memory=check or truth == "loo" or (
        truth == "auto" and loo_seconds(n_fit, p) <= LOO_AUTO_SECONDS))
    if X_test is not None:
        X_test = np.asarray(X_test)
        if X_test.ndim != 2 or X_test.shape[1] != p:
            raise InvalidParameterError(f"the test rows must have p = {p} columns like the training features, "
                                        f"got shape {X_test.shape}.")
        if X_test.shape[0] < 2 or not np.all(np.isfinite(X_test)):
            raise InvalidParameterError("the test rows must be at least 2 rows of finite numbers.")
        if holdout is not None:
            raise InvalidParameterError("give either test rows or a hold-out size, not both.")
        Xtr, ytr, X0 = _training_rows(X, None, path), np.asarray(y, dtype=np.float64), X_test.astype(np.float64)
        split = dict(kind="test rows", test_rows=int(X0.shape[0]), train_rows=n_all)
    else:
        tr, te = holdout_split(n_all, holdout, seed)
        Xtr, ytr, X0 = (_training_rows(X, tr, path), np.asarray(y, dtype=np.float64)[tr],
                        np.asarray(X[te], dtype=np.float64))
        split = dict(kind="hold-out", test_rows=int(te.size), train_rows=int(tr.size), seed=seed)
    n = Xtr.shape[0]
    fam = get_family(family)

    top = top if path == "top" else None
    t0 = time.perf_counter()
    basis = eigenbasis(Xtr, X0, top=top, seed=seed)
    trace = float(np.sum(rows.squared_norms(Xtr)))
    timings["eigenbasis_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit_info = {"given": beta is not None}
    if beta is None:
        beta, info = fit_glm(Xtr, ytr, family, lam, _spectrum_of(basis, trace))
        fit_info.update(info)
    eta = rows.times(Xtr, beta)
    g, w = np.asarray(fam.grad(ytr, eta), dtype=np.float64), np.asarray(fam.hess(ytr, eta), dtype=np.float64)
    factor = None
    if p > n:              # the n-dimensional eigenbasis is the cheap coordinates
        IF, NS, _ = ridge_influences(basis, g, w, lam)
    else:                  # the Cholesky factor of H (which the LOO check reuses)
        factor = ridge_influences_direct(Xtr, X0, g, w, lam)
        IF, NS = factor.IF, factor.NS
    timings["fit_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    L, truth_used, rule, agreement = _truth(Xtr, ytr, X0, family=family, lam=lam, beta=beta, g=g, w=w, IF=IF,
                                            NS=NS, truth=truth, seed=seed, progress=progress, factor=factor)
    timings["truth_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with_variants = variants is True or (variants == "auto" and min(n, p) <= VARIANT_MAX)
    model = ConditionalModel(Xtr, g, X0, L, w=w if with_variants else None, bases={"plain": basis}, top=top,
                             seed=seed)
    names = [n for n in estimators_for(with_variants) if n in CONDITIONAL]     # the registry's, with a conditional theory
    variants_note = "available" if with_variants else (
        f"unavailable: the weighted eigenbasis of trak_w costs a second eigendecomposition, done only when "
        f"min(n, p) <= {VARIANT_MAX} (here {min(n, p)}); pass variants=True (--variants) to force it")
    rank = model.rank
    k_max = p if lam_trak > 0 else min(p, rank - 1) if rank < p else p
    if k_grid is None:
        k_grid = sorted({int(round(v)) for v in np.geomspace(1, max(k_max, 1), K_POINTS)} | {k_max})
    memo = {}

    def scan_model():      # after the curve, so that it shares the model's Grams
        if "scan" not in memo:
            memo["scan"] = model.test_rows(np.arange(min(SCAN_ROWS, model.T)))
        return memo["scan"]

    def point(k, lt=lam_trak, fast=False):
        """Predictions at (k, lt) for every M (memoized), or None where the equivalent does not exist;
        fast: TRAK's closed forms only, on the first SCAN_ROWS test rows (the best-lam_T scan)."""
        key = (k, lt, fast)
        if key not in memo:
            try:
                memo[key] = (scan_model().predict(k, lt, list(n_proj), estimators=["trak"], seed=seed, spearman=False)
                             if fast else model.predict(k, lt, list(n_proj), estimators=names, seed=seed))
            except EstimatorDoesNotExistError:
                memo[key] = None
        return memo[key]

    def value(k, M):
        pts = point(k)
        if pts is None:
            return None
        return pts[list(n_proj).index(M)]["estimators"]["trak"][metric]["mean"]

    curve = []
    it = _bar(len(k_grid), "conditional theory") if progress else None
    for k in k_grid:
        pts = point(k)
        for j, M in enumerate(n_proj):
            for name in names:
                row = dict(estimator=name, k=k, n_proj=M, pearson=None, spearman=None, rel_error=None)
                if pts is not None:
                    e = pts[j]["estimators"][name]
                    row.update(pearson=e["pearson"]["mean"], spearman=e["spearman"]["mean"],
                               rel_error=e["rel_error"]["mean"], spearman_error=pts[j]["spearman_error"][name])
                curve.append(row)
        if it is not None:
            it.update(1)
    if it is not None:
        it.close()
    truth_p = prepare_truth(L)
    exact = {"if": exact_metrics(IF, truth_p), "ns": exact_metrics(NS, truth_p)}
    for name in ("if", "ns"):
        curve.append(dict(estimator=name, k=None, n_proj=None, **{m: exact[name][m]["mean"]
                                                                   for m in ("pearson", "spearman", "rel_error")}))

    from .plan import attach_best_lam_trak, recommend

    recommendation = recommend(k_grid, list(n_proj), value, target, rel_tol=K_REL_TOL)
    if top is not None:    # the tail model's accurate range (benchmarks/README.md, bench_plan)
        for rec in recommendation:
            k = rec["k"] if rec["k"] is not None else rec.get("ceiling_k")     # unreachable: its ceiling's k
            rec["beyond_tail_model"] = k is not None and k > TOP_ACCURATE * top
    timings["curve_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    best = []
    tr_over_p = trace / p
    if scan_lam_trak:
        scan_k = k_grid if len(k_grid) <= SCAN_K else [k_grid[int(i)] for i in np.linspace(0, len(k_grid) - 1, SCAN_K)]
        grid = [0.0] + [float(f * tr_over_p) for f in LAM_T_FACTORS]
        for k in scan_k:
            cands = [(lt, point(k, lt, fast=True)) for lt in grid]
            cands = [(lt, pts) for lt, pts in cands if pts is not None]
            for j, M in enumerate(n_proj):
                if not cands:
                    continue
                lt, pts = max(cands, key=lambda c: c[1][j]["estimators"]["trak"]["pearson"]["mean"])
                full = point(k, lt)[j]["estimators"]["trak"]
                best.append(dict(k=k, n_proj=M, lam_trak=lt, lam_trak_traker=lt * k / p,
                                 pearson=full["pearson"]["mean"], spearman=full["spearman"]["mean"],
                                 rel_error=full["rel_error"]["mean"], predicted=full[metric]["mean"]))
        attach_best_lam_trak(recommendation, best, target)
    timings["lam_trak_scan_s"] = time.perf_counter() - t0

    d_eff = hessian_effective_dimension(basis, w, lam) if factor is None else factor.effective_dimension(lam)
    k_rule = int(min(max(1, math.ceil(d_eff)), k_max))
    at_rule = [dict(n_proj=M, predicted=value(k_rule, M)) for M in n_proj]
    effective_dimension = dict(d_A=d_eff, k_rule=k_rule, predicted_at_k_rule=at_rule, rank=rank,
                               definition="d_eff = tr(H^{-1} X^T diag(w) X) = sum_j s_j/(s_j + lam), s_j the "
                                          "eigenvalues of the Hessian's Gram X^T diag(w) X")
    checks = None
    if check:
        t0 = time.perf_counter()
        checks = check_recommendation(Xtr, X0, g, w, L, recommendation, metric=metric, lam_trak=lam_trak,
                                      draws=check_draws, seed=seed)
        timings["check_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start
    inputs = dict(n=n, p=p, dtype=str(X.dtype), family=family, lam=lam, lam_trak=lam_trak, target=target,
                  metric=metric, n_proj=list(n_proj), k_grid=list(k_grid), split=split, fit=fit_info,
                  variants=variants_note, truth_rule=rule, ns_vs_loo=agreement,
                  spectrum_method="exact" if path == "exact" else (
                      f"top {top} eigenpairs (randomized) and the tail model, accurate for k <= {int(TOP_ACCURATE * top)}"),
                  timings=timings)
    out = dict(method="conditional", truth=truth_used, curve=curve, recommendation=recommendation,
               effective_dimension=effective_dimension, best_lam_trak=best, inputs=inputs)
    if checks is not None:
        out["check"] = checks
    return out


def check_recommendation(X, X0, g, w, L, recommendation, *, metric: str, lam_trak: float, draws: int = 8,
                         seed: int = 0) -> list:
    """TRAK with real sketches at each recommended k (its M, the user's lam_T) against the same
    truth: achieved mean +- s.e. over `draws` draws of M sketches (`sims.runs.conditional.sketch_monte_carlo`)."""
    from .conditional import sketch_monte_carlo

    out = []
    for rec in recommendation:
        k = rec["k"] if rec["k"] is not None else rec.get("ceiling_k")
        if k is None:
            continue
        mc = sketch_monte_carlo(X, X0, g, w, L, k=k, lam_trak=lam_trak, n_proj=rec["n_proj"], reps=draws,
                                seed=seed + 7)["trak"][metric]
        out.append(dict(n_proj=rec["n_proj"], k=k, predicted=rec["predicted"] if rec["k"] is not None
                        else rec["ceiling"], achieved=mc["mean"], se=mc["se"], draws=draws))
    return out
