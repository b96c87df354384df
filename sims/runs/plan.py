"""`trak-sim plan`: the projection size k and number of projections M that TRAK needs on a user's
own training features, from the general-covariance theory (docs/plan.md).

Pipeline: validate (X, y) (`features.check_features`); spectrum of X^T X (`features.feature_spectrum`);
fit the ridge GLM or take the given beta (`features.fit_glm`); plug-in signal and suite units
(`features.suite_summary`: s, theta, gamma, sigma, c^2; lam and lam_T divided by c^2); then the
theory of `theory.predict_spectrum` along k for each M:

    TRAK (docs/theory.md §7):  Pearson = rho_M = tau_AB / sqrt(tau_A2 tau_Bbar2),
                               tau_Bbar2 = tau_B2/M + (1 - 1/M) s2,
                               relerr = sqrt(1 - 2 tau_AB/((1 + c_T) tau_A2) + tau_Bbar2/((1 + c_T)^2 tau_A2)),
                               Spearman = spearman_trak(g, omega, rho_M),

the fixed point (the law of (g, w) and the constants c, E[w/(1+cw)], E[w^2/(1+cw)^2]) being solved
once and the traces once per (k, lam_T) by `theory.prediction.SketchScan`; `tests/test_plan.py`
checks the result against `predict_spectrum` itself. IF does not
depend on k or M. The corrected variants (trak_w, trak_lev, trak_wlev) are added through
`predict_spectrum(..., variants=True)` when the theory provides them (reported unavailable otherwise).

Both metrics of TRAK increase with rho_M, so the lam_T that maximises either maximises rho_M; it is
found on a log grid of lam_T per (k, M).
"""

from __future__ import annotations

import math
import time

import numpy as np

from theory.errors import InvalidParameterError
from theory.estimators import SKETCHED, estimator_group
from theory.prediction import SketchScan
from theory.families import get_family

from .features import check_features, feature_spectrum, fit_glm, suite_summary

METRICS = ("spearman", "pearson")
DEFAULT_N_PROJ = (1, 2, 4, 8, 16)
VARIANTS = estimator_group("variant")
LAM_T_GRID = np.logspace(-5, 1, 25)     # times delta (the scale of the Gram's eigenvalues, suite units)


def _check_options(family, lam, lam_trak, target, metric, n_proj, k_grid, p):
    from theory.params import check_int, check_real

    if metric not in METRICS:
        raise InvalidParameterError(f"metric must be spearman or pearson, got {metric!r}.")
    target = check_real("target", target)
    if not 0.0 < target < 1.0:
        raise InvalidParameterError(f"target must be strictly between 0 and 1, got {target:g}.")
    lam = check_real("lam", lam)
    if not lam > 0:
        raise InvalidParameterError(f"lam must be > 0 (on the scale of your features), got {lam:g}.")
    lam_trak = check_real("lam_trak", lam_trak, lo=0.0)
    n_proj = sorted({check_int("n_proj", m, lo=1, hi=10**6) for m in np.atleast_1d(n_proj).tolist()})
    if not n_proj:
        raise InvalidParameterError("n_proj needs at least one value.")
    if k_grid is not None:
        k_grid = sorted({check_int("k", k, lo=1, hi=p) for k in np.atleast_1d(k_grid).tolist()})
        if not k_grid:
            raise InvalidParameterError("k_grid needs at least one value.")
    return lam, lam_trak, target, n_proj, k_grid


def default_k_grid(p: int, k_max: int, points: int = 40) -> list:
    """About `points` integers from 1 to k_max, geometrically spaced."""
    return sorted({int(round(v)) for v in np.geomspace(1, max(k_max, 1), points)} | {k_max})


def recommend(k_grid, n_proj, value, target: float, rel_tol: float = 0.0) -> list:
    """Per M: the smallest k on the grid whose predicted metric value(k, M) reaches the target,
    refined by bisection below it to the smallest integer (rel_tol = 0) or until the bracket is
    within rel_tol of k (value(k, M) is None where the theory has no value); otherwise k = None,
    reachable = False and the ceiling (best value, its k)."""
    out = []
    for M in n_proj:
        vals = [(k, value(k, M)) for k in k_grid]
        ok = [(k, v) for k, v in vals if v is not None]
        if not ok:
            out.append(dict(n_proj=M, k=None, predicted=None, reachable=False, ceiling=None, ceiling_k=None))
            continue
        ceil_k, ceil_v = max(ok, key=lambda kv: kv[1])
        idx = next((i for i, (k, v) in enumerate(vals) if v is not None and v >= target), None)
        rec = dict(n_proj=M, k=None, predicted=None, reachable=idx is not None, ceiling=ceil_v, ceiling_k=ceil_k)
        if idx is not None:
            hi, vhi = vals[idx]
            lo, vlo = vals[idx - 1] if idx > 0 else (0, None)
            while hi - lo > max(1, math.ceil(rel_tol * hi)):
                mid = _next_k(lo, vlo, hi, vhi, target, rel_tol)
                v = value(mid, M)
                if v is not None and v >= target:
                    hi, vhi = mid, v
                else:
                    lo, vlo = mid, v
            rec.update(k=hi, predicted=vhi)
        out.append(rec)
    return out


def _next_k(lo: int, vlo, hi: int, vhi: float, target: float, rel_tol: float) -> int:
    """The next k to evaluate inside the bracket (lo, hi) of the target: where the line through the
    two ends in log k meets the target, moved half a tolerance towards the unknown side so that one
    evaluation often closes the bracket, and kept at least a quarter of the bracket from each end
    (the bracket shrinks geometrically, as bisection's); the midpoint when an end has no value.
    Curves that are smooth in log k (the theory's) need two or three evaluations for 2%."""
    if lo < 1 or vlo is None or not vhi > vlo:
        return (lo + hi) // 2
    t = (target - vlo) / (vhi - vlo)
    guess = math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo))) * (1.0 + 0.5 * rel_tol)
    quarter = max(1, (hi - lo) // 4)
    return int(min(max(round(guess), lo + quarter), hi - quarter))


def attach_best_lam_trak(recommendation, best, target: float) -> None:
    """Per M (in place): the smallest k whose best lam_T reaches the target, with that lam_T, and
    the best value over the scanned (k, lam_T) (`with_best_lam_trak`)."""
    for rec in recommendation:
        cands = [b for b in best if b["n_proj"] == rec["n_proj"]]
        hit = next((b for b in cands if b["predicted"] >= target), None)
        top = max(cands, key=lambda b: b["predicted"]) if cands else None
        rec["with_best_lam_trak"] = dict(
            k=hit["k"] if hit else None, lam_trak=hit["lam_trak"] if hit else None,
            predicted=hit["predicted"] if hit else None,
            ceiling=top["predicted"] if top else None, ceiling_k=top["k"] if top else None)


METHODS = ("conditional", "gaussian", "both")


def plan(X, y, *, family: str, lam: float, lam_trak: float = 0.0, target: float = 0.9,
         metric: str = "spearman", n_proj=DEFAULT_N_PROJ, k_grid=None, beta=None,
         spectrum: str = "auto", seed: int = 0, scan_lam_trak: bool = True, method: str = "conditional",
         X_test=None, holdout=None, truth: str = "auto", variants="auto", check: bool = False,
         check_draws: int = 8, progress: bool = False, top: int | None = None) -> dict:
    """Smallest projection size k per number of projections M for TRAK to reach `target`
    (Pearson or Spearman correlation with exact LOO, predicted by the theory) on features X (n x p,
    any scale, numpy array or memory map) with labels y; lam and lam_trak on the scale of X
    (docs/plan.md). beta: coefficients to use instead of fitting.

    method "conditional" (default): the theory conditional on the rows themselves
    (`sims.runs.plan_conditional`): test rows X_test, or a seeded hold-out of `holdout` rows
    (default min(200, n/10)); the truth exact LOO or the Newton step (`truth` auto/loo/ns);
    `check` adds TRAK with `check_draws` real sketches at the recommended k; `spectrum` "exact" (the
    exact eigenbasis; "auto" below min(n, p) = 8000) or "randomized" (the top `top` eigenpairs, default
    500, and the tail model: accurate for k up to 0.6 top, flagged beyond). "gaussian": the
    Gaussian-design theory at the spectrum and a plug-in truth (every row fits; no test rows).
    "both": the conditional plan with the Gaussian one under key "gaussian".
    Returns a dict with keys method, truth, curve, recommendation, effective_dimension,
    best_lam_trak, inputs (and check). Raises InvalidParameterError (bad input) or NotConvergedError."""
    X, y = check_features(X, y, family)
    if method not in METHODS:
        raise InvalidParameterError(f"method must be one of {', '.join(METHODS)}, got {method!r}.")
    lam, lam_trak, target, n_proj, k_grid = _check_options(family, lam, lam_trak, target, metric, n_proj,
                                                           k_grid, X.shape[1])
    from theory.params import check_int

    if holdout is not None:
        holdout = check_int("holdout", holdout, lo=2)
    from .plan_conditional import TOP_RANK

    top = TOP_RANK if top is None else check_int("top", top, lo=1)
    if spectrum not in ("auto", "exact", "randomized"):
        raise InvalidParameterError(f"spectrum must be auto, exact or randomized, got {spectrum!r}.")
    if check_draws < 2:
        raise InvalidParameterError(f"check_draws must be >= 2, got {check_draws}.")
    beta = _check_beta(beta, X.shape[1])
    common = dict(family=family, lam=lam, lam_trak=lam_trak, target=target, metric=metric, n_proj=n_proj,
                  k_grid=k_grid, beta=beta, seed=seed, scan_lam_trak=scan_lam_trak)
    if method == "gaussian":
        if X_test is not None or holdout is not None:
            raise InvalidParameterError("test rows and a hold-out belong to --method conditional or both.")
        return _plan_gaussian(X, y, spectrum=spectrum, **common)
    from .plan_conditional import plan_conditional

    out = plan_conditional(X, y, X_test=X_test, holdout=holdout, truth=truth, variants=variants, check=check,
                           check_draws=check_draws, progress=progress, spectrum=spectrum, top=top, **common)
    if method == "both":
        out["method"] = "both"
        out["gaussian"] = _plan_gaussian(X, y, spectrum=spectrum, **common)
    return out


def _check_beta(beta, p):
    if beta is None:
        return None
    beta = np.asarray(beta, dtype=float)
    if beta.shape != (p,) or not np.all(np.isfinite(beta)):
        raise InvalidParameterError(f"beta must be {p} finite numbers (one per column of X), got shape {beta.shape}.")
    return beta


def _plan_gaussian(X, y, *, family, lam, lam_trak, target, metric, n_proj, k_grid, beta, spectrum, seed,
                   scan_lam_trak) -> dict:
    """The Gaussian-design plan (the module docstring): every row fits, the truth is the plug-in model."""
    t_start = time.perf_counter()
    fam = get_family(family)        # resolved once; the record keeps the name
    n, p = X.shape
    timings = {}
    t0 = time.perf_counter()
    spec = feature_spectrum(X, method=spectrum, seed=seed)
    timings["spectrum_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit_info = {"given": True}
    if beta is None:
        beta, fit_info = fit_glm(X, y, fam, lam, spec)
        fit_info["given"] = False
    timings["fit_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sm = suite_summary(X, y, fam, spec, beta)
    c2, delta = sm["c2"], n / p
    lam_s, lam_t_s = lam / c2, lam_trak / c2
    th = SketchScan(sm["s"], sm["theta"], family=fam, delta=delta, lam=lam_s, gamma=sm["gamma"], sigma=sm["sigma"])
    const = th.base["constants"]
    if k_grid is None:
        k_max = p if lam_t_s > 0 else min(p, th.rank - 1, n - 1)
        k_grid = default_k_grid(p, max(k_max, 1))

    def user_lam_t(v, k):   # suite -> user scale, and traker's lambda (P with N(0, 1/p) entries)
        return dict(lam_trak=v * c2, lam_trak_traker=v * c2 * k / p)

    # curve at the user's lam_T
    curve, rows = [], []
    for k in k_grid:
        tr = th.traces(k, lam_t_s)
        for M in n_proj:
            if tr is None:
                rows.append((k, M, None, None))
                continue
            rho, rel = th.rho_relerr(tr, M)
            rows.append((k, M, rho, rel))
    sp = iter(th.spearman([r[2] for r in rows if r[2] is not None]).tolist())
    value = {}
    for k, M, rho, rel in rows:
        if rho is None:
            curve.append(dict(estimator="trak", k=k, n_proj=M, pearson=None, spearman=None, rel_error=None))
            continue
        row = dict(estimator="trak", k=k, n_proj=M, pearson=rho, spearman=float(next(sp)), rel_error=rel)
        curve.append(row)
        value[(k, M)] = row[metric]
    ifm = th.base["estimators"]["if"]
    curve.append(dict(estimator="if", k=None, n_proj=None, pearson=ifm["pearson"], spearman=ifm["spearman"],
                      rel_error=ifm["rel_error"]))

    def metric_at(k, M):
        tr = th.traces(k, lam_t_s)
        if tr is None:
            return None
        rho, rel = th.rho_relerr(tr, M)
        return rho if metric == "pearson" else float(th.spearman([rho])[0])

    # variants, through predict_spectrum when the theory has them
    variants = _other_sketched(th, curve, k_grid, n_proj, lam_t_s)

    recommendation = recommend(k_grid, n_proj, lambda k, M: value[(k, M)] if k in k_grid and (k, M) in value
                               else metric_at(k, M), target)

    # best lam_T per (k, M)
    best = []
    if scan_lam_trak:
        grid = np.concatenate([[0.0], LAM_T_GRID * delta])
        for k in k_grid:
            trs = [(lt, th.traces(k, lt)) for lt in grid]
            trs = [(lt, t) for lt, t in trs if t is not None]
            for M in n_proj:
                if not trs:
                    continue
                cand = [(lt, *th.rho_relerr(t, M)) for lt, t in trs]
                lt, rho, rel = max(cand, key=lambda c: c[1])
                best.append(dict(k=k, n_proj=M, **user_lam_t(lt, k), pearson=rho, rel_error=rel))
        sps = th.spearman([b["pearson"] for b in best])
        for b, v in zip(best, sps.tolist()):
            b["spearman"] = v
            b["predicted"] = b[metric]
        attach_best_lam_trak(recommendation, best, target)

    # effective dimension and the rule k ~ d_eff
    d_A, ell_A = const["d_A"], const["ell_A"]
    k_rule = int(min(max(1, math.ceil(d_A)), p))
    at_rule = [dict(n_proj=M, predicted=metric_at(k_rule, M)) for M in n_proj]
    effective_dimension = dict(d_A=d_A, ell_A=ell_A, k_rule=k_rule, predicted_at_k_rule=at_rule,
                               rank=th.rank, definition="d_A = sum_j s_j/(s_j + ell_A), ell_A = lam/(delta E[w/(1+cw)])")
    timings["theory_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start
    inputs = dict(n=n, p=p, dtype=str(X.dtype), family=family, lam=lam, lam_trak=lam_trak, target=target,
                  metric=metric, n_proj=list(n_proj), k_grid=list(k_grid), scale_c2=c2, lam_suite=lam_s,
                  lam_trak_suite=lam_t_s, delta=delta, gamma=sm["gamma"], sigma=sm["sigma"],
                  spectrum_method=spec.method, spectrum_eigenpairs=int(spec.V.shape[1]), fit=fit_info,
                  variants=variants, timings=timings)
    return dict(method="gaussian", truth="plug-in (the Gaussian-design theory)", curve=curve,
                recommendation=recommendation, effective_dimension=effective_dimension, best_lam_trak=best,
                inputs=inputs)


def _other_sketched(th, curve, k_grid, n_proj, lam_t_s) -> str:
    """Append every sketched estimator of the registry but TRAK (whose curve the fast path gives) to
    `curve` from `predict_spectrum`: the core ones, and the corrected variants when the theory
    provides them; returns "available" or why the variants are not."""
    from theory import predict_spectrum

    note = "available"
    for k in k_grid:
        for M in n_proj:
            if not th.valid(k, lam_t_s):
                continue
            kw = dict(family=th.family, delta=th.delta, kappa=k / th.p, lam=th.lam, lam_trak=lam_t_s,
                      gamma=th.gamma, sigma=th.sigma, n_proj=M, nodes=th.nodes)
            try:
                est = predict_spectrum(th.s, th.theta, variants=note == "available", **kw)["estimators"]
            except InvalidParameterError as e:
                note = f"unavailable: {e}"
                est = predict_spectrum(th.s, th.theta, variants=False, **kw)["estimators"]
            for name in SKETCHED:
                if name != "trak" and name in est:
                    curve.append(dict(estimator=name, k=k, n_proj=M, **{m: est[name][m] for m in
                                                                         ("pearson", "spearman", "rel_error")}))
    return note


# ------------------------------------------------------------------------------- validation
def simulate_at(X, y, X0, *, family: str, lam: float, k: int, n_proj: int = 1, lam_trak: float = 0.0,
                reps: int = 5, seed: int = 0) -> dict:
    """Exact LOO versus TRAK (k, M = n_proj, lam_T) and IF on the user's own data: training rows
    (X, y), test rows X0, all on the user's scale (mapped to suite units as in `plan`). `reps`
    independent projections (the fit and exact LOO do not change). Returns
    {estimator: {metric: {"mean", "se"}}} (`sims.engine.metrics.mean_and_se` over reps x test points)."""
    import jax
    import jax.numpy as jnp

    from ..engine.data import Data
    from ..engine.metrics import mean_and_se
    from ..engine.simulate import analyze, replicate_key, validate_sim

    X, y = check_features(np.asarray(X), y, family)
    n, p = X.shape
    c2 = float(np.sum(np.asarray(X, float) ** 2)) / n
    c = math.sqrt(c2)
    sp = validate_sim(family=family, p=p, delta=n / p, kappa=k / p, lam=lam / c2, lam_trak=lam_trak / c2,
                      n_proj=n_proj, n_test=X0.shape[0], reps=reps, seed=seed)
    data = Data(jnp.asarray(X / c), jnp.asarray(y), jnp.asarray(np.asarray(X0, float) / c), jnp.zeros(p))
    results = [analyze(sp, data, jax.random.split(replicate_key(seed, r))[1]) for r in range(reps)]
    return {e: {m: dict(zip(("mean", "se"), mean_and_se(np.stack([r.metrics[e][m] for r in results]))))
                for m in ("pearson", "spearman", "rel_error")} for e in results[0].metrics}


# ----------------------------------------------------------------------------------- output
def format_plan(result: dict) -> str:
    """Human-readable summary of a `plan` result (both methods side by side for method "both")."""
    i, e = result["inputs"], result["effective_dimension"]
    m = i["metric"]
    if result["method"] == "gaussian":
        head = [f"{i['family']} ridge on {i['n']} x {i['p']} features ({i['dtype']}): lam = {i['lam']:g}, "
                f"lam_T = {i['lam_trak']:g} (suite units: /{i['scale_c2']:.4g} -> {i['lam_suite']:.4g}, "
                f"{i['lam_trak_suite']:.4g}); spectrum {i['spectrum_method']}, rank {e['rank']}; "
                f"plug-in gamma = {i['gamma']:.3g}" + (f", sigma = {i['sigma']:.3g}" if get_family(i["family"]).uses_sigma else ""),
                "method: gaussian (the Gaussian-design theory at your spectrum and a plug-in truth)"]
    else:
        sp = i["split"]
        agree = i.get("ns_vs_loo")
        head = [f"{i['family']} ridge on {sp['train_rows']} training rows x {i['p']} features ({i['dtype']}), "
                f"{sp['test_rows']} test rows ({sp['kind']}): lam = {i['lam']:g}, lam_T = {i['lam_trak']:g}; rank {e['rank']}",
                f"method: conditional (the theory on your rows; the projection is the only randomness); "
                f"truth: {'exact LOO' if result['truth'] == 'loo' else 'the Newton step (NS)'}",
                f"  (truth rule: {i['truth_rule']})"]
        if agree:
            head.append(f"  NS against exact LOO on {agree['points']} training points: Spearman {agree['spearman']:.4f}")
        if i.get("spectrum_method", "exact") != "exact":
            head.append(f"  spectrum: {i['spectrum_method']}")
    lines = head + [f"effective dimension d = {e['d_A']:.1f} -> rule k ~ d_eff = {e['k_rule']}",
                    f"target: {m} >= {i['target']:g} (TRAK vs the truth, predicted)",
                    f"{'M':>5s} {'k needed':>9s} {'predicted':>10s} {'at k_rule':>10s} {'ceiling (k)':>18s}"
                    f" {'best lam_T: k':>14s} {'lam_T':>10s}" + (f" {'gaussian: k':>12s} {'predicted':>10s}"
                                                                  if "gaussian" in result else "")]
    gauss = {r["n_proj"]: r for r in result.get("gaussian", {}).get("recommendation", [])}
    for rec, rule in zip(result["recommendation"], e["predicted_at_k_rule"]):
        k = "unreach." if rec["k"] is None else str(rec["k"])
        pred = "-" if rec["predicted"] is None else f"{rec['predicted']:.4f}"
        ceil = "-" if rec["ceiling"] is None else f"{rec['ceiling']:.4f} ({rec['ceiling_k']})"
        ar = "-" if rule["predicted"] is None else f"{rule['predicted']:.4f}"
        b = rec.get("with_best_lam_trak") or {}
        bk = "-" if b.get("k") is None else str(b["k"])
        bl = "-" if b.get("lam_trak") is None else f"{b['lam_trak']:.3g}"
        line = f"{rec['n_proj']:>5d} {k:>9s} {pred:>10s} {ar:>10s} {ceil:>18s} {bk:>14s} {bl:>10s}"
        if rec["n_proj"] in gauss:
            gr = gauss[rec["n_proj"]]
            line += f" {'unreach.' if gr['k'] is None else str(gr['k']):>12s} " \
                    f"{'-' if gr['predicted'] is None else format(gr['predicted'], '.4f'):>10s}"
        lines.append(line)
    ifrow = next(r for r in result["curve"] if r["estimator"] == "if")
    how = "exact on your rows" if result["method"] != "gaussian" else "predicted"
    lines.append(f"IF (no projection, {how}): {m} {ifrow[m]:.4f}; corrected variants: {i['variants']}")
    beyond = [rec["n_proj"] for rec in result["recommendation"] if rec.get("beyond_tail_model")]
    if beyond:
        lines.append(f"warning: for M = {', '.join(map(str, beyond))} the recommended k (or, unreachable, the "
                     f"ceiling's k) lies beyond the tail model's accurate range ({i['spectrum_method']}); the "
                     "prediction there can be off by several hundredths: rerun with a larger --top, --spectrum "
                     "exact, or verify with --check.")
    if any(rec["k"] is None for rec in result["recommendation"]):
        lines.append(f"the target {i['target']:g} is unreachable for some M at lam_T = {i['lam_trak']:g}: "
                     "the ceiling column is the best predicted value on the k grid.")
    for c in result.get("check", []):
        lines.append(f"check M = {c['n_proj']}, k = {c['k']}: predicted {c['predicted']:.4f}, achieved with "
                     f"{c['draws']} real sketches {c['achieved']:.4f} +- {c['se']:.4f}")
    t = i["timings"]
    lines.append(f"({', '.join(f'{k[:-2]} {v:.1f} s' for k, v in t.items())}; lam_T on your scale, TRAK with "
                 "P ~ N(0, 1/k); traker's lambda = lam_T k/p; docs/plan.md)")
    return "\n".join(lines)


def plot_plan(result: dict, path: str) -> str:
    """PNG of the predicted metric along k for each M (user's lam_T solid, best lam_T dashed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    i, e = result["inputs"], result["effective_dimension"]
    m = i["metric"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    cmap = plt.get_cmap("viridis")
    for j, M in enumerate(i["n_proj"]):
        color = cmap(j / max(1, len(i["n_proj"]) - 1))
        rows = [r for r in result["curve"] if r["estimator"] == "trak" and r["n_proj"] == M and r[m] is not None]
        ax.plot([r["k"] for r in rows], [r[m] for r in rows], color=color, label=f"TRAK, M = {M}")
        best = [b for b in result["best_lam_trak"] if b["n_proj"] == M]
        if best:
            ax.plot([b["k"] for b in best], [b[m] for b in best], color=color, ls="--", lw=0.9)
        gauss = [r for r in result.get("gaussian", {}).get("curve", [])
                 if r["estimator"] == "trak" and r["n_proj"] == M and r[m] is not None]
        if gauss:
            ax.plot([r["k"] for r in gauss], [r[m] for r in gauss], color=color, ls=":", lw=1.0)
    ifrow = next(r for r in result["curve"] if r["estimator"] == "if")
    ax.axhline(ifrow[m], color="k", lw=0.8, ls=":", label="IF")
    ax.axhline(i["target"], color="tab:red", lw=0.8, label=f"target {i['target']:g}")
    ax.axvline(e["d_A"], color="gray", lw=0.8, ls="-.", label=f"d_A = {e['d_A']:.0f}")
    ax.set_xscale("log")
    ax.set_xlabel("projection size k")
    ax.set_ylabel(f"predicted {m} with exact LOO")
    extra = "; dotted: Gaussian-design theory" if "gaussian" in result else ""
    ax.set_title(f"{i['family']}, n = {i['n']}, p = {i['p']}, lam_T = {i['lam_trak']:g}, {result['method']} "
                 f"theory (dashed: best lam_T{extra})", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
