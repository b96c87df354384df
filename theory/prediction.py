"""`theory.predict`: proportional-regime predictions of IF, NS (ALO) and TRAK versus exact LOO.

Assembly (docs/theory.md §2 and §4). For one test point, across training points i,

    LOO_i ~ NS_i = -g_i U_i,   IF_i = -t_i U_i with t = g/(1 + c w),   TRAK_i = -g_i V_i/(1 + c_T),

with (U, V) centered Gaussian, independent of (g, w), Var U = tau(A^2), Var V = tau(B_bar^2),
Cov(U, V) = tau(A B_bar) (`traces`). Hence, with E over the limit law of (g, w) (`fixed_point`):

    Pearson(IF)  = E[g t] / sqrt(E[g^2] E[t^2])      Pearson(TRAK) = rho_M = tau(AB)/sqrt(tau(A^2) tau(B_bar^2))
    relerr(IF)   = sqrt(E[(g - t)^2] / E[g^2])      relerr(TRAK)  = sqrt(1 - 2 tau(AB)/((1+c_T) tau(A^2))
                                                                          + tau(B_bar^2)/((1+c_T)^2 tau(A^2)))
    scale(IF)    = E[g t] / E[t^2]                  scale(TRAK)   = (1 + c_T) tau(AB) / tau(B_bar^2)

and NS has Pearson = Spearman = scale = 1, relerr = 0. Spearman correlations are population rank
correlations of the limit laws (`spearman`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from compilecache import cached_jit
from .covariance import alignment as alignment_weights
from .estimators import REGISTRY, Law, estimators_for
from .covariance import spectrum as covariance_spectrum
from .errors import InvalidParameterError, NotConvergedError
from .families import Family, get_family
from .fixed_point import solve_fixed_point, solve_fixed_point_path
from .general import kernel_traces_general, solve_fixed_point_general, weighted_kernel_traces_general
from .numerics import enable_float64
from .glm_law import DEFAULT_NODES, atoms, atoms_compiled, quadrature
from .lds import lds_predictions
from .shapes import bucket
from .params import MODEL_PARAMS, check_bool, check_int, check_real, declared_signature, validate_model
from .spearman import spearman_if, spearman_pair, spearman_trak
from .traces import kernel_traces, weighted_kernel_traces

METRICS = ("pearson", "spearman", "rel_error", "scale")


def _law_moments(g, w, wt, c):
    t = g / (1.0 + c * w)
    E = lambda f: jnp.sum(wt * f)  # noqa: E731
    return t, dict(e_g2=E(g * g), e_t2=E(t * t), e_gt=E(g * t), e_w=E(w),
                   e_w_w=E(w / (1.0 + c * w)), e_w2_w2=E((w / (1.0 + c * w)) ** 2),
                   mean_leverage=E(c / (1.0 + c * w)))


def _metrics(te, g, wt, var_u, var_v, cov, spearman):
    """Metrics of an estimator -t_e V against LOO = -g U (Var U, Var V, Cov(U, V) given):

        Pearson  = Cov E[t_e g] / sqrt(Var V E[t_e^2] Var U E[g^2])
        relerr   = sqrt((E[t_e^2] Var V - 2 E[t_e g] Cov + E[g^2] Var U) / (E[g^2] Var U))
        scale    = E[t_e g] Cov / (E[t_e^2] Var V)

    `spearman` is the (already computed) rank correlation of the pair (t_e V, g U).
    """
    E = lambda f: jnp.sum(wt * f)  # noqa: E731
    e_tt, e_tg, e_gg = E(te * te), E(te * g), E(g * g)
    return dict(pearson=cov * e_tg / jnp.sqrt(var_v * e_tt * var_u * e_gg),
                spearman=spearman,
                rel_error=jnp.sqrt(jnp.maximum(e_tt * var_v - 2 * e_tg * cov + e_gg * var_u, 0.0) / (e_gg * var_u)),
                scale=e_tg * cov / (e_tt * var_v))


def _spearman_if(g, t, wt, broad: bool):
    """IF's Spearman: the fast windowed quadrature, or for a law of log|g| too broad for its
    windows (it returns NaN then; `_with_broad_retry`) the direct sum, exact in the outer atoms."""
    return spearman_pair(g, t, wt, 1.0) if broad else spearman_if(g, t, wt)


def _estimators(g, w, wt, c, t, tr, tw=None, broad=False):
    """Metrics of every registered estimator with a limit theory (`theory.estimators.REGISTRY`):
    the core ones, and the corrected variants given the weighted traces tw. Each is -t_e V_e
    (`Limit`) and scored by `_metrics`; NS is LOO's own limit."""
    law, a2, one = Law(g, w, wt, t), tr["tau_A2"], jnp.ones_like(c)
    est = {}
    for name in estimators_for(tw is not None):
        e = REGISTRY[name]
        if e.limit is None:                 # NS: LOO itself in the limit
            est[name] = dict(pearson=one, spearman=one, rel_error=0.0 * one, scale=one)
            continue
        lim = e.limit(law, tr, tw)
        if lim.spearman == "if":
            sp = _spearman_if(g, lim.t, wt, broad)
        elif lim.spearman.startswith("="):
            sp = est[lim.spearman[1:]]["spearman"]
        else:
            rho = lim.rho if lim.rho is not None else lim.cov / jnp.sqrt(a2 * lim.var)
            sp = spearman_trak(g, wt, rho) if lim.spearman == "gg" else spearman_pair(g, lim.t, wt, rho)
        est[name] = _metrics(lim.t, g, wt, a2, lim.var, lim.cov, sp)
    return est


def _assemble(x, grid, delta, lam, kappa, lam_trak, n_proj, *, family: Family, nodes, identity, variants=False,
              broad=False):
    """Constants and metrics from the fixed-point unknowns x = (log c, a, log r) (isotropic design);
    `grid` is the quadrature of the limit law (`glm_law.quadrature`; None for gaussian)."""
    c, a, r = jnp.exp(x[0]), x[1], jnp.exp(x[2])
    closed = family.closed_form
    if closed is not None:
        g, w, wt = closed.atoms(r, delta, c, nodes)
    else:
        _, _, g, w, wt = atoms(grid, family, c, a, r)
    t, mom = _law_moments(g, w, wt, c)
    tr = kernel_traces(delta=delta, lam=lam, kappa=kappa, lam_trak=lam_trak, n_proj=n_proj,
                       identity=identity, c=c, e_w_w=mom["e_w_w"], e_w2_w2=mom["e_w2_w2"])
    tw = None
    if variants:
        tw = weighted_kernel_traces(delta=delta, lam=lam, kappa=kappa, lam_trak=lam_trak, n_proj=n_proj,
                                    identity=identity, c=c, tau_A2=tr["tau_A2"], w=w, wt=wt)
    constants = dict(c=c, r=r, **mom, **tr, **(tw or {}))
    return _estimators(g, w, wt, c, t, tr, tw, broad), constants


_STATIC = ("family", "nodes", "identity", "variants", "broad")
_assemble_one = cached_jit(_assemble, static_argnames=_STATIC)


@cached_jit(static_argnames=_STATIC + ("x_axis", "grid_axis"))
def _assemble_many(x, grid, delta, lam, kappa, lam_trak, n_proj, *, family, nodes, identity,
                   variants=False, broad=False, x_axis=0, grid_axis=None):
    """vmap of `_assemble` over points, every parameter (points,) per point, so that one program
    (per family, law size and chunk) serves curves in any of them. The fixed-point unknowns x are
    per point (x_axis 0: (points, 3)) or shared (x_axis None: (3,), curves in kappa, lam_T or M;
    what depends only on x, the limit law, its moments, IF's Spearman, the compression of log|g|,
    is then computed once). The grid is shared (grid_axis None) or one per point (grid_axis 0:
    grids of one size, stacked)."""
    def one(x, grid, *params):
        return _assemble(x, grid, *params, family=family, nodes=nodes, identity=identity, variants=variants,
                         broad=broad)
    return jax.vmap(one, in_axes=(x_axis, grid_axis, 0, 0, 0, 0, 0))(x, grid, delta, lam, kappa, lam_trak, n_proj)


def _with_broad_retry(assemble, *args, **static):
    """Run `assemble`; if IF's windowed Spearman signalled (NaN) a law too broad for its windows,
    run it again with the direct evaluation (slower, only deep on the separable side)."""
    est, const = assemble(*args, **static, broad=False)
    if not np.all(np.isfinite(np.asarray(est["if"]["spearman"]))):
        est, const = assemble(*args, **static, broad=True)
    return est, const


def _check_finite(estimators, where):
    bad = [f"{e}.{k}" for e, row in estimators.items() for k, v in row.items()
           if not np.all(np.isfinite(v))]
    if bad:
        raise NotConvergedError(f"the prediction is not finite for {', '.join(bad)} at {where}.")


def predict(*, p: int | None = None, variants: bool = False, nodes: int = DEFAULT_NODES,
            lds_alpha: float | None = None, lds_subsets: int | None = None, **model) -> dict:
    """Predicted agreement of IF, NS (ALO) and TRAK with exact LOO in the proportional limit.

    The model's parameters are `theory.params.MODEL_PARAMS` (declared once; docs/conventions.md):
    delta = n/p, kappa = k/p, lam and lam_trak ridges, gamma signal, sigma gaussian noise, n_proj =
    M projections, projection "gaussian", "rademacher" (same limit, by universality) or "identity". Returns {"config", "estimators", "constants"}
    with estimators[e][metric] a float for e in ("if", "ns", "trak") and metric in METRICS;
    variants=True adds the corrected TRAK estimators "trak_w" (Hessian-weighted Gram), "trak_lev"
    (leave-one-out rescaling in the projected space) and "trak_wlev" (both). A non-isotropic
    covariance (power, spiked, ar1; `theory.covariance`) uses the general-covariance theory
    (`theory.general`) with the spectrum at dimension p (required: such spectra depend on p);
    for the isotropic covariance the limit does not depend on p, so a given p (2 <= p <= 10^6,
    checked all the same) is ignored.
    lds_alpha = alpha in (0, 1) adds the linear datamodeling score over random subsets of fraction
    alpha ("lds", `theory.lds`; isotropic covariance only) to every estimator and to exact LOO as
    estimator "loo"; it is the J -> infinity limit, or with lds_subsets = J >= 3 the expected
    Spearman over J subsets.
    Raises InvalidParameterError, EstimatorDoesNotExistError, NotConvergedError.
    """
    enable_float64()
    mp = validate_model(**model)
    variants = check_bool("variants", variants)
    if p is not None:
        p = check_int("p", p, lo=2, hi=1_000_000)
    if lds_alpha is not None:
        lds_alpha = check_real("lds_alpha", lds_alpha, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        if mp.covariance != "isotropic":
            raise InvalidParameterError("the LDS has no theory for a non-isotropic covariance yet.")
    if lds_subsets is not None:
        lds_subsets = check_int("lds_subsets", lds_subsets, lo=3, hi=10_000)
        if lds_alpha is None:
            raise InvalidParameterError("lds_subsets needs lds_alpha.")
    if mp.covariance != "isotropic":
        if p is None:
            raise InvalidParameterError(
                f"a {mp.covariance} covariance needs the dimension p (its spectrum depends on p).")
        spec = covariance_spectrum(mp.covariance, p, mp.cov_param)
        return predict_spectrum(spec, alignment_weights(spec, mp.alignment), _model=mp, nodes=nodes,
                                variants=variants)
    family = get_family(mp.family)
    fp, x = solve_fixed_point(family, mp.delta, mp.lam, mp.gamma, mp.sigma, nodes=nodes)
    est, const = _with_broad_retry(_assemble_one, jnp.asarray(x), quadrature(family, mp.gamma, mp.sigma, nodes),
                                   mp.delta, mp.lam, mp.kappa, mp.lam_trak, mp.n_proj, family=family,
                                   nodes=nodes, identity=mp.projection == "identity", variants=variants)
    estimators = {e: {k: float(v) for k, v in row.items()} for e, row in est.items()}
    constants = {k: float(v) for k, v in const.items()}
    constants.update(m=fp.m, q=fp.q)
    _check_finite(estimators, mp)
    if lds_alpha is not None:
        lds, lds_const = lds_predictions(family=family, delta=mp.delta, lam=mp.lam, gamma=mp.gamma,
                                         sigma=mp.sigma, alpha=lds_alpha, full=fp, constants=constants,
                                         variants=variants, n_subsets=lds_subsets)
        estimators = {"loo": {}, **estimators}
        for e, v in lds.items():
            estimators[e]["lds"] = v
        constants.update(lds_const)
        _check_finite(estimators, mp)
    return {"config": mp.asdict(), "estimators": estimators, "constants": constants}


predict.__signature__ = declared_signature(MODEL_PARAMS, extra=(
    ("p", None), ("variants", False), ("nodes", DEFAULT_NODES), ("lds_alpha", None), ("lds_subsets", None)))


def predict_spectrum(spectrum, theta=None, *, variants: bool = False, nodes: int = DEFAULT_NODES,
                     _model=None, **model) -> dict:
    """`predict` for an arbitrary feature spectrum s (p,) and alignment theta (p,) of beta*
    (e.g. empirical ones of a real dataset; normalized here to mean(s) = 1 and mean(s theta) = 1).
    Layout of `predict`; constants add the effective dimensions d_A, d_T (`theory.general`).
    Along a curve of k, lam_T or M, `predict_curve(..., spectrum=, theta=)` solves the fixed point once."""
    enable_float64()
    mp = _model or validate_model(**model)
    variants = check_bool("variants", variants)
    s, th = _normalized_spectrum(spectrum, theta)
    est, constants = _spectrum_predictions(s, th, [mp], family=get_family(mp.family), nodes=nodes,
                                           variants=variants)
    estimators = {e: {k: float(v[0]) for k, v in row.items()} for e, row in est.items()}
    return {"config": mp.asdict(), "estimators": estimators, "constants": constants[0]}


def _normalized_spectrum(spectrum, theta):
    """(s, theta) checked and normalized to mean(s) = 1, mean(s theta) = 1 (theta None: all ones)."""
    s = np.asarray(spectrum, dtype=float)
    if s.ndim != 1 or s.size < 2 or not np.all(np.isfinite(s)) or np.any(s < 0) or s.sum() <= 0:
        raise InvalidParameterError("spectrum must be a 1-D array of at least 2 finite non-negative numbers.")
    s = s * s.size / s.sum()
    th = np.ones_like(s) if theta is None else np.asarray(theta, dtype=float)
    if th.shape != s.shape or not np.all(np.isfinite(th)) or np.any(th < 0) or np.mean(s * th) <= 0:
        raise InvalidParameterError("theta must be finite, non-negative and of the spectrum's shape.")
    return s, th / np.mean(s * th)


@cached_jit(static_argnames=("broad",))
def _estimators_many(g, w, wt, c, t, tr, tw, broad):
    """`_estimators` vmapped over traces tr, tw (arrays over points) at one law (g, w, wt, c, t)."""
    return jax.vmap(lambda tr, tw: _estimators(g, w, wt, c, t, tr, tw, broad=broad))(tr, tw), None


def _spectrum_predictions(s, th, models, *, family: Family, nodes, variants):
    """General-covariance predictions at `models` that share the fixed point (`family`, delta, lam,
    gamma, sigma): the fixed point and the law of (g, w) once, the traces (T2')-(T8') per model, and
    the estimators' metrics in one pass vmapped over the models' traces (IF's Spearman, which
    depends on the law only, once). Returns (estimators[e][metric] arrays over models, [constants])."""
    mp = models[0]
    for m in models:
        if m.projection == "identity" and m.lam_trak == 0 and m.delta <= 1:
            raise InvalidParameterError("lam_trak = 0 without projection needs delta > 1.")
    fp, x, e_g2 = solve_fixed_point_general(family, s, th, mp.delta, mp.lam, mp.gamma, mp.sigma, nodes)
    c = jnp.asarray(fp.c)
    closed = family.closed_form
    if closed is not None:
        g, w, wt = closed.atoms_of_variance(e_g2, nodes)
    else:
        _, _, g, w, wt = atoms_compiled(quadrature(family, mp.gamma, mp.sigma, nodes), family, fp.c, x[1], fp.r)
    t, mom = _law_moments(g, w, wt, c)
    mom = {k: float(v) for k, v in mom.items()}
    trs, tws = [], []
    for m in models:
        shape = dict(s=s, delta=m.delta, lam=m.lam, kappa=m.kappa, lam_trak=m.lam_trak, n_proj=m.n_proj,
                     identity=m.projection == "identity", c=fp.c)
        trs.append(kernel_traces_general(**shape, e_w_w=mom["e_w_w"], e_w2_w2=mom["e_w2_w2"]))
        if variants:
            tws.append(weighted_kernel_traces_general(**shape, tau_A2=trs[-1]["tau_A2"], w=np.asarray(w),
                                                      wt=np.asarray(wt)))

    def assemble(idx):
        tr = {k: np.asarray([trs[i][k] for i in idx]) for k in trs[0]}
        tw = {k: np.asarray([tws[i][k] for i in idx]) for k in tws[0]} if variants else None
        return _with_broad_retry(_estimators_many, g, w, wt, c, t, tr, tw)[0]

    # A single point without the variants runs the curves' program, padded: 7 padding points cost
    # ~10 ms there, a second compiled program ~1.3 s. With the variants a padded point costs as much
    # as a real one (their Spearman tables), so a single point runs alone.
    chunk = 1 if len(models) == 1 and variants else _curve_chunk(len(models), g.size, variants, cap=_SPECTRUM_CHUNK)
    est = _chunked(assemble, len(models), chunk)
    _check_finite(est, mp)
    constants = [{**mom, **{k: float(v) for k, v in {**a, **(b or {})}.items()},
                  "c": fp.c, "r": fp.r, "m": fp.m, "q": fp.q, "p": int(s.size)}
                 for a, b in zip(trs, tws or [None] * len(models))]
    return est, constants


_FIXED_POINT_PARAMS = ("delta", "lam", "gamma")
_BATCHED = ("delta", "kappa", "lam", "lam_trak", "n_proj", "gamma")
_SPECTRUM_CHUNK = 8       # points per vmapped assembly of a general-covariance curve
_SKETCH_PARAMS = ("kappa", "lam_trak", "n_proj", "projection")     # the fixed point does not depend on them


def predict_curve(vary: str, values, *, nodes: int = DEFAULT_NODES, variants: bool = False,
                  spectrum=None, theta=None, **params) -> dict:
    """`predict` along `values` of one parameter, batched: {"values", "estimators", "constants"}.

    For vary in delta, kappa, lam, lam_trak, n_proj, gamma the fixed points are solved in
    sequence, each warm-started from the previous one (none is needed when only kappa, lam_trak or
    n_proj vary), and the assembly is vmapped over chunks of CURVE_CHUNK points, every parameter
    per point, so that curves share compiled programs (`_assemble_many`; over gamma with the
    quadrature grids stacked, which needs grids of one size: `shapes.bucket` rounds the sizes,
    so a curve spanning two sizes falls back to the loop); other parameters fall back to a loop
    of `predict`. estimators[e][metric] and constants[k] are arrays aligned with `values`.
    With a non-isotropic covariance (and p), or a given `spectrum` and `theta` (the curve of
    `predict_spectrum`), a curve of kappa, lam_trak, n_proj or projection solves the general
    fixed point once and assembles all points in one vmapped pass; other curves loop.
    """
    enable_float64()
    values = list(values)
    if not values:
        raise InvalidParameterError("predict_curve needs at least one value.")
    if vary not in ("family", "delta", "kappa", "lam", "lam_trak", "gamma", "sigma", "n_proj", "projection"):
        raise InvalidParameterError(f"cannot vary {vary!r}; choose a parameter of predict.")
    variants = check_bool("variants", variants)
    p = params.pop("p", None)
    if p is not None:
        p = check_int("p", p, lo=2, hi=1_000_000)
    models = [validate_model(**{**params, vary: v}) for v in values]
    m0 = models[0]
    family = get_family(m0.family)       # one family along every batched curve (a curve in family loops)
    if spectrum is not None or m0.covariance != "isotropic":
        return _general_curve(vary, values, models, spectrum, theta, p, family=family, nodes=nodes,
                              variants=variants)
    if theta is not None:
        raise InvalidParameterError("theta needs a spectrum.")
    grid, grid_axis = quadrature(family, m0.gamma, m0.sigma, nodes), None
    if vary == "gamma" and grid is not None:
        grids = [quadrature(family, m.gamma, m.sigma, nodes) for m in models]
        if len({g.nu.shape for g in grids}) == 1:
            grid, grid_axis = jax.tree.map(lambda *a: np.stack(a), *grids), 0
        else:
            vary = None       # grids of several sizes: the loop below
    if vary not in _BATCHED:
        results = [predict(**m.asdict(), p=p, nodes=nodes, variants=variants) for m in models]
        return _stack(values, [r["estimators"] for r in results], [r["constants"] for r in results])
    if vary in _FIXED_POINT_PARAMS:     # warm starts, linearly extrapolated along the curve
        solved = solve_fixed_point_path(family, [m.delta for m in models], [m.lam for m in models],
                                        [m.gamma for m in models], m0.sigma, grids=grid if grid_axis == 0 else None,
                                        nodes=nodes)
        extra = [dict(m=fp.m, q=fp.q) for fp, _ in solved]
        x_arg = np.stack([x for _, x in solved])
    else:
        fp, x = solve_fixed_point(family, m0.delta, m0.lam, m0.gamma, m0.sigma, nodes=nodes)
        x_arg, extra = np.asarray(x), [dict(m=fp.m, q=fp.q)] * len(models)
    params = [np.asarray([getattr(m, k) for m in models], dtype=np.int64 if k == "n_proj" else float)
              for k in ("delta", "lam", "kappa", "lam_trak", "n_proj")]
    x_axis = 0 if x_arg.ndim == 2 else None
    static = dict(family=family, nodes=nodes, identity=m0.projection == "identity", variants=variants,
                  x_axis=x_axis, grid_axis=grid_axis)
    def assemble(idx):
        per_point = [x_arg if x_axis is None else x_arg[idx],
                     grid if grid_axis is None else jax.tree.map(lambda v: v[idx], grid),
                     *(a[idx] for a in params)]
        return _with_broad_retry(_assemble_many, *per_point, **static)

    atoms_ = 0 if grid is None else int(np.shape(grid.nu)[-1])
    est, const = _chunked(assemble, len(models), _curve_chunk(len(models), atoms_, variants))
    _check_finite(est, f"{vary} in {values}")
    const.update({k: np.asarray([e[k] for e in extra]) for k in ("m", "q")})
    return {"values": np.asarray(values), "estimators": est, "constants": const}


def _general_curve(vary, values, models, spectrum, theta, p, *, family: Family, nodes, variants):
    """`predict_curve` under the general-covariance theory: the spectrum given, or that of the
    models' covariance at dimension p (`family`: the models' family, when the curve is not in it)."""
    m0 = models[0]
    if spectrum is None:
        if p is None:
            raise InvalidParameterError(
                f"a {m0.covariance} covariance needs the dimension p (its spectrum depends on p).")
        spectrum = covariance_spectrum(m0.covariance, p, m0.cov_param)
        theta = alignment_weights(spectrum, m0.alignment)
    elif m0.covariance != "isotropic":
        raise InvalidParameterError("give either a spectrum or a non-isotropic covariance, not both.")
    s, th = _normalized_spectrum(spectrum, theta)
    if vary in _SKETCH_PARAMS:
        est, constants = _spectrum_predictions(s, th, models, family=family, nodes=nodes, variants=variants)
        return {"values": np.asarray(values), "estimators": est,
                "constants": {k: np.asarray([c[k] for c in constants]) for k in constants[0]}}
    results = [predict_spectrum(s, th, _model=m, nodes=nodes, variants=variants) for m in models]
    return _stack(values, [r["estimators"] for r in results], [r["constants"] for r in results])


CURVE_MEMORY = 2 << 30     # bytes of work arrays for one vmapped assembly of a curve
# Work memory of the assembly per curve point and quadrature atom (XLA's memory analysis of the
# compiled program: ~0.9 kB without the variants, ~20 kB with them, whose Spearman correlations
# hold the largest tables; a poisson curve has 28,672 atoms, so 570 MB a point with variants).
_BYTES_PER_ATOM = {False: 1_000, True: 21_000}


CURVE_CHUNK = 20    # points per vmapped assembly: curves of any length share one program


def _curve_chunk(points: int, atoms: int, variants: bool, cap: int = CURVE_CHUNK) -> int:
    """Points per vmapped assembly: `cap` (a curve of fewer points is padded to it, as compiling
    another program costs more than assembling the padding), fewer if that exceeds CURVE_MEMORY."""
    per_point = max(atoms, 1) * _BYTES_PER_ATOM[bool(variants)]
    return int(max(1, min(cap, CURVE_MEMORY // per_point)))


def _chunked(assemble, points: int, chunk: int):
    """assemble(idx) over equal chunks of point indices (the last one padded with the last point,
    so that every chunk runs one compiled program), concatenated and cut to `points`."""
    parts = []
    for start in range(0, points, chunk):
        idx = np.minimum(np.arange(start, start + chunk), points - 1)
        parts.append(jax.tree.map(lambda v: np.broadcast_to(np.asarray(v), (chunk,)), assemble(idx)))
    return jax.tree.map(lambda *v: np.concatenate(v)[:points], *parts)


def _stack(values, estimators, constants):
    est = {e: {k: np.asarray([r[e][k] for r in estimators]) for k in estimators[0][e]} for e in estimators[0]}
    const = {k: np.asarray([c[k] for c in constants]) for k in constants[0]}
    return {"values": np.asarray(values), "estimators": est, "constants": const}


class SketchScan:
    """TRAK under a general covariance along many (k, lamT, M) at one fixed point (the planner's
    scan): the fixed point and the law of g once (`predict_spectrum`), then per (k, lamT) the
    traces (T2')-(T8') of `general.kernel_traces_general` in numpy, and rho_M, the relative error
    and a batch of Spearman correlations from them. Spectrum s (mean 1) and alignment theta as in
    `predict_spectrum`; lam in suite units; `family` a `Family` (or its name)."""

    def __init__(self, s, theta, *, family: Family | str, delta, lam, gamma, sigma, nodes=None):
        family = get_family(family)
        self.s, self.theta, self.family, self.delta, self.lam = np.asarray(s, float), theta, family, delta, lam
        self.gamma, self.sigma = gamma, sigma
        self.p = self.s.size
        self.rank = int(np.sum(self.s > 0))
        self.nodes = nodes or DEFAULT_NODES
        # operating point: k = 1, M = 1, lam_T = 1 (always valid; its TRAK part is not used): IF and
        # the fixed-point constants
        self.base = predict_spectrum(self.s, self.theta, family=family, delta=delta, kappa=1.0 / self.p,
                                     lam=lam, lam_trak=1.0, gamma=self.gamma, sigma=self.sigma, n_proj=1,
                                     nodes=self.nodes)
        k = self.base["constants"]
        closed = family.closed_form
        if closed is not None:
            g, _, wt = closed.atoms_of_variance(k["e_g2"], self.nodes)
        else:
            a = k["m"] / self.gamma
            _, _, g, _, wt = atoms_compiled(quadrature(family, self.gamma, self.sigma, self.nodes), family, k["c"], a, k["r"])
        g, wt = jnp.asarray(g), jnp.asarray(wt)
        self._spear = jax.jit(jax.vmap(lambda r: spearman_trak(g, wt, r)))
        self.law = dict(g=np.asarray(g), wt=np.asarray(wt))

    def valid(self, k, lam_t) -> bool:
        if lam_t > 0:
            return True
        # lam_T = 0: the sketched Gram must be invertible in the limit (k below the rank and n), or
        # P square (k = p = rank < n: the unprojected kernel)
        return (k < self.rank and k < self.delta * self.p) or (k == self.p == self.rank and self.delta > 1)

    def traces(self, k, lam_t):
        """(tau_A2, tau_AB, tau_B2, s2, c_T) at projection size k and ridge lam_t (suite units)."""
        if not self.valid(k, lam_t):
            return None
        c = self.base["constants"]
        if lam_t == 0 and self.rank < self.p:
            # zero eigenvalues make the lam_T = 0 equation 0/0 at mu = 0: take the limit lam_T -> 0+
            lam_t = 1e-10 * self.delta
        try:
            with np.errstate(all="ignore"):
                t = kernel_traces_general(s=self.s, delta=self.delta, lam=self.lam, kappa=k / self.p,
                                          lam_trak=lam_t, n_proj=1, identity=False, c=c["c"],
                                          e_w_w=c["e_w_w"], e_w2_w2=c["e_w2_w2"])
        except (ValueError, ZeroDivisionError, FloatingPointError):
            return None
        out = np.array([t["tau_A2"], t["tau_AB"], t["tau_B2"], t["s2"], t["c_T"]])
        return out if np.all(np.isfinite(out)) and t["tau_B2"] > 0 else None

    @staticmethod
    def rho_relerr(tr, M):
        a2, ab, b2, s2, cT = tr
        bb = b2 / M + (1.0 - 1.0 / M) * s2
        rho = ab / math.sqrt(a2 * bb)
        rel = math.sqrt(max(1.0 - 2.0 * ab / ((1.0 + cT) * a2) + bb / ((1.0 + cT) ** 2 * a2), 0.0))
        return rho, rel

    def spearman(self, rhos):
        rhos = np.asarray(rhos, dtype=float)
        if not rhos.size:
            return rhos
        size = bucket(rhos.size, minimum=8, per_octave=1)     # few shapes, few compilations
        return np.asarray(self._spear(np.pad(rhos, (0, size - rhos.size))))[:rhos.size]
