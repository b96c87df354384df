"""One simulation = `reps` independent replicates of: data -> fit -> exact LOO, IF, NS, TRAK -> metrics.

`run_replicate` is the unit a sweep calls; `simulate` aggregates replicates into the layout of
`theory.predict` (estimators x metrics, each with mean and standard error). Randomness: replicate
r uses key fold_in(PRNGKey(seed), r), so the first replicates of a longer run equal a shorter run.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from theory.covariance import alignment as cov_alignment
from theory.covariance import spectrum as cov_spectrum
from theory.errors import InvalidParameterError, NotConvergedError
from theory.families import get_family
from theory.numerics import enable_float64
from theory.params import (MODEL_PARAMS, ModelParams, check_bool, check_choice, check_int, check_real,
                           declared_signature, validate_model)

from .data import Data, make_data
from .params import DESIGNS, SIM_KEYS, SIM_PARAMS, SWEEP_KEYS  # noqa: F401  (re-exported)
from .estimators import (REGISTRY, estimator_group, if_ns_influence, if_ns_influence_kernel,
                         projected_influence, variant_influence)
from .fit import check_fit, hessian_inverse, newton_fit
from .lds import lds, subset_outputs
from .loo import DEFAULT_MEMORY_BUDGET, chunk_size_for, exact_loo
from .metrics import METRICS, default_top_m, mean_and_se, row_metrics
from .tiers import tiered_jit

ESTIMATORS = estimator_group("core")
VARIANTS = estimator_group("variant")

SIM_N_PROJ_MAX = 10_000         # each projection is a full TRAK computation; M -> infinity is theory's
FALLBACK_MEMORY = 8 * 2**30     # when the machine's memory cannot be read


def estimator_names(sp) -> tuple:
    return ESTIMATORS + (VARIANTS if sp.variants else ())


@dataclass(frozen=True)
class SimParams:
    """Validated simulation settings: the model parameters plus finite sizes."""

    model: ModelParams
    p: int
    n: int
    k: int
    n_test: int
    reps: int
    seed: int
    top_m: int
    tol: float = 1e-10
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    design: str = "gaussian"
    variants: bool = False
    lds_subsets: int = 0
    lds_alpha: float = 0.5

    def asdict(self) -> dict:
        d = self.model.asdict()
        d.update({k: v for k, v in asdict(self).items()
                  if k != "model" and (k != "lds_alpha" or self.lds_subsets)})   # (lds_alpha only with the LDS)
        return d


def validate_sim(*, memory_budget=DEFAULT_MEMORY_BUDGET, lds_alpha=0.5, **params) -> SimParams:
    """Check the simulation settings (see `simulate`); raise `InvalidParameterError` on bad input.

    Beyond `validate_model`: 2 <= p <= 200000, n = round(delta p) >= 4, k < n when lam_trak = 0,
    n_proj <= 10^4, memory_budget between 1 MiB and the available memory, and one replicate must
    fit in the available memory (`replicate_memory`, `available_memory`). The parameters are
    `theory.params.MODEL_PARAMS` and `sims.engine.params.SIM_PARAMS` (declared once).
    """
    sim = {prm.name: params.pop(prm.name, prm.default) for prm in SIM_PARAMS}
    p, n_test, reps, seed, top_m, tol, design, variants, lds_subsets = (
        sim[k] for k in ("p", "n_test", "reps", "seed", "top_m", "tol", "design", "variants", "lds_subsets"))
    m = validate_model(**params)
    p = check_int("p", p, lo=2, hi=200_000)
    n = int(round(m.delta * p))
    if n < 4:
        raise InvalidParameterError(f"n = round(delta * p) must be >= 4, got {n} (delta = {m.delta:g}, p = {p}).")
    k = p if m.projection == "identity" else max(1, int(round(m.kappa * p)))
    if m.lam_trak == 0.0 and m.projection != "identity" and k >= n:
        raise InvalidParameterError(f"lam_trak = 0 needs k < n, got k = {k}, n = {n}; use lam_trak > 0.")
    if m.n_proj > SIM_N_PROJ_MAX:
        raise InvalidParameterError(
            f"n_proj must be <= {SIM_N_PROJ_MAX} in a simulation (each projection is a full TRAK "
            f"computation; theory.predict gives the limit of many), got {m.n_proj}.")
    n_test = check_int("n_test", n_test, lo=1, hi=100_000)
    reps = check_int("reps", reps, lo=1, hi=100_000)
    seed = check_int("seed", seed, lo=0, hi=2**63 - 1)
    top_m = default_top_m(n) if top_m is None else check_int("top_m", top_m, lo=1, hi=n)
    tol = check_real("tol", tol, lo=1e-15, hi=1e-4)
    available, where = available_memory()
    memory_budget = check_int("memory_budget", memory_budget, lo=2**20)
    if memory_budget > available:
        raise InvalidParameterError(
            f"memory_budget must be <= the {where} ({_size(available)}), got {_size(memory_budget)}.")
    design = check_choice("design", design, DESIGNS)
    variants = check_bool("variants", variants)
    lds_subsets = check_int("lds_subsets", lds_subsets, lo=0, hi=10_000)
    if lds_subsets == 1 or lds_subsets == 2:
        raise InvalidParameterError(f"lds_subsets must be 0 (off) or >= 3, got {lds_subsets}.")
    lds_alpha = check_real("lds_alpha", lds_alpha, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    need = replicate_memory(n=n, p=p, k=k, n_test=n_test, variants=variants, lds_subsets=lds_subsets,
                            memory_budget=memory_budget)
    if need > available:
        raise InvalidParameterError(
            f"one replicate at p = {p}, n = {n}, k = {k}, n_test = {n_test} needs about {_size(need)} "
            f"(the n x p design alone {_size(8 * n * p)}, the p x p Hessian inverse {_size(8 * p * p)}), "
            f"more than the {where} ({_size(available)}); reduce p, delta, kappa or n_test.")
    return SimParams(m, p, n, k, n_test, reps, seed, top_m, tol, memory_budget, design, variants,
                     lds_subsets, lds_alpha)


def replicate_memory(*, n: int, p: int, k: int, n_test: int, variants: bool = False, lds_subsets: int = 0,
                     memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Bytes (float64) of the largest arrays one replicate holds at once, a lower estimate:
    X and X A (n x p each); X_0 and X_0 A (T x p each); H and A = H^{-1} (p x p each); three n x n
    kernel matrices when n < p; TRAK's P, X P and Gram matrix (p x k, n x k, k x k); 8 T x n
    influence matrices (LOO, IF, NS, TRAK and work copies; 16 with variants); the LDS masks
    (J x n); the exact-LOO lanes (`sims.engine.loo.chunk_size_for`: 6n + 4p + 4T doubles per lane)
    and its float32 copies of X and X A (as much as one n x p in float64)."""
    T = n_test
    doubles = (3 * n * p + 2 * T * p + 2 * p * p + (3 * n * n if n < p else 0)
               + p * k + n * k + k * k + (16 if variants else 8) * T * n + lds_subsets * n)
    lanes = chunk_size_for(n, p, T, memory_budget)
    return 8 * doubles + lanes * 8 * (6 * n + 4 * p + 4 * T)


def available_memory() -> tuple[int, str]:
    """(bytes, what) a replicate may use: the memory limit of the default JAX device on an
    accelerator, else the physical memory (os.sysconf; its share when it backs several host
    devices, which a sweep runs side by side), else FALLBACK_MEMORY."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        try:
            limit = (device.memory_stats() or {}).get("bytes_limit")
        except (AttributeError, NotImplementedError, RuntimeError):
            limit = None
        if limit:
            return int(limit), f"{device.platform} memory"
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return FALLBACK_MEMORY, "assumed memory"
    shared = len(jax.devices()) if device.platform == "cpu" else 1
    if shared == 1:
        return physical, "physical memory"
    return physical // shared, f"a 1/{shared} share of the physical memory ({shared} host devices)"


def _size(nbytes: int) -> str:
    """Bytes in words: MiB, GiB or TiB with 3 significant digits."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes / 2**20:.3g} MiB"


@dataclass
class ReplicateResult:
    metrics: dict                      # estimator -> metric -> (T,) array
    diagnostics: dict
    influence: dict = field(default_factory=dict)   # "loo", "if", "ns", "trak" -> (T, n), if kept


def replicate_key(seed: int, rep: int):
    return jax.random.fold_in(jax.random.PRNGKey(seed), rep)


def run_replicate(sp: SimParams, rep: int, *, keep_influence: bool = False,
                  progress=None) -> ReplicateResult:
    """Replicate `rep` of `sp`: draw data, fit, exact LOO, estimators, per-test-point metrics."""
    enable_float64()
    m = sp.model
    t0 = time.perf_counter()
    k_data, k_proj = jax.random.split(replicate_key(sp.seed, rep))
    spectrum = theta = None
    if m.covariance != "isotropic":
        spectrum = cov_spectrum(m.covariance, sp.p, m.cov_param)
        theta = cov_alignment(spectrum, m.alignment)
    data = make_data(k_data, family=get_family(m.family), n=sp.n, p=sp.p, n_test=sp.n_test,
                     gamma=m.gamma, sigma=m.sigma, design=sp.design, spectrum=spectrum, theta=theta)
    result = analyze(sp, data, k_proj, keep_influence=keep_influence, progress=progress)
    result.diagnostics["wall_time_s"] = time.perf_counter() - t0
    return result


@tiered_jit
def _inverse_and_product(X, w, lam):
    """(A = H^{-1}, X A, whether A is finite) in one program."""
    A = hessian_inverse(X, w, lam)
    return A, X @ A, jnp.all(jnp.isfinite(A))


def analyze(sp: SimParams, data: Data, k_proj, *, keep_influence: bool = False,
            progress=None) -> ReplicateResult:
    """Fit, exact LOO, estimators and metrics for one data set (synthetic or real)."""
    m = sp.model
    family = get_family(m.family)
    t0 = time.perf_counter()
    fit = newton_fit(data.X, data.y, m.lam, family=family, tol=min(sp.tol, 1e-10))
    check_fit(fit, data.X, data.y, m.lam, family)
    A, XA, finite = _inverse_and_product(data.X, fit.w, m.lam)
    if not bool(finite):
        raise NotConvergedError("the Hessian at the fitted coefficients is numerically singular; use lam > 0.")
    loo = exact_loo(family, data.X, data.y, data.X0, fit, A, m.lam, XA=XA, tol=sp.tol,
                    memory_budget=sp.memory_budget, progress=progress)
    if sp.n < sp.p and m.lam > 0:      # the kernel form is exact near interpolation
        IF, NS, h = if_ns_influence_kernel(data.X, data.X0, fit.g, fit.w, m.lam)
    else:
        IF, NS, h = if_ns_influence(data.X, data.X0, fit.g, fit.w, A, XA)
    influence = {"loo": loo.values, "if": np.asarray(IF), "ns": np.asarray(NS)}
    names = estimator_names(sp)
    sketched = tuple(name for name in names if REGISTRY[name].engine in ("projected", "variant"))
    # every sketched estimator from the same projections: the corrected variants' engine when they
    # are asked for (then for all of them), else the projected one
    engine = variant_influence if sp.variants else projected_influence
    extra = engine(k_proj, data.X, data.X0, fit.g, *((fit.w,) if sp.variants else ()), m.lam_trak, k=sp.k,
                   n_proj=m.n_proj, projection=m.projection, names=sketched)
    influence.update({name: np.asarray(v) for name, v in extra.items()})
    loo_j = jax.device_put(loo.values)      # (jnp.asarray compiles a program per shape)
    metrics = {}
    if sp.lds_subsets:
        masks, outputs = subset_outputs(jax.random.fold_in(k_proj, 7), data.X, data.y, data.X0, m.lam,
                                        fit.beta, family=family, n_subsets=sp.lds_subsets,
                                        fraction=sp.lds_alpha, tol=min(sp.tol, 1e-10))
        names = ("loo",) + names
    for name in names:
        est = influence[name]
        if not np.all(np.isfinite(est)):
            raise NotConvergedError(f"the {name.upper()} estimator produced non-finite values; "
                                    "its Gram matrix is numerically singular (increase lam_trak).")
        metrics[name] = {k: np.asarray(v) for k, v in row_metrics(jax.device_put(est), loo_j, top_m=sp.top_m).items()}
        if sp.lds_subsets:
            metrics[name]["lds"] = np.asarray(lds(jax.device_put(est), masks, jax.device_put(outputs)))
        bad = [k for k, v in metrics[name].items() if not np.all(np.isfinite(v))]
        if bad:
            raise NotConvergedError(
                f"the {bad[0]} of {name.upper()} is not finite: some test point has constant LOO or "
                f"{name.upper()} influences (a degenerate configuration).")
    diagnostics = {
        "newton_steps": int(fit.n_iter),
        "loo_chord_steps_mean": float(loo.n_iter.mean()),
        "loo_chord_steps_max": int(loo.n_iter.max()),
        "mean_leverage": float(np.mean(np.asarray(h))),
        "mean_w": float(np.mean(np.asarray(fit.w))),
        "overlap_m": float(fit.beta @ data.beta_star / sp.p),
        "norm2_beta_hat": float(fit.beta @ fit.beta / sp.p),
        "wall_time_s": time.perf_counter() - t0,
    }
    return ReplicateResult(metrics, diagnostics, influence if keep_influence else {})


def _ordered(metrics: dict) -> list:
    """METRICS order, then any extra metric (lds)."""
    return [m for m in METRICS if m in metrics] + sorted(set(metrics) - set(METRICS))


def aggregate(sp: SimParams, results: list[ReplicateResult]) -> dict:
    """Mean and standard error over replicates and test points, in the layout of `theory.predict`."""
    estimators = {
        name: {metric: dict(zip(("mean", "se"),
                                mean_and_se(np.stack([r.metrics[name][metric] for r in results]))))
               for metric in _ordered(results[0].metrics[name])}
        for name in results[0].metrics
    }
    diag_keys = results[0].diagnostics.keys()
    diagnostics = {key: float(np.mean([r.diagnostics[key] for r in results])) for key in diag_keys}
    diagnostics["wall_time_s"] = float(np.sum([r.diagnostics["wall_time_s"] for r in results]))
    diagnostics["loo_chord_steps_max"] = int(max(r.diagnostics["loo_chord_steps_max"] for r in results))
    diagnostics["device"] = str(jax.devices()[0].platform)
    diagnostics["jax_version"] = jax.__version__
    return {"config": sp.asdict(), "estimators": estimators, "diagnostics": diagnostics}


def simulate(*, memory_budget=DEFAULT_MEMORY_BUDGET, lds_alpha=0.5, progress=False, **params) -> dict:
    """Simulate exact LOO, IF, NS (ALO) and TRAK on ridge GLMs and score them against LOO.

    Sizes: n = round(delta p) training points, k = round(kappa p) projection size, n_test test
    points, `reps` independent replicates from `seed`. `design` draws the features with
    Gaussian (default), Rademacher or Student-t (5 d.f.) entries, all with covariance I/p.
    variants=True adds the corrected TRAK estimators trak_lev, trak_w, trak_wlev
    (`sims.engine.estimators.variant_influence`). lds_subsets = J > 0 adds the linear datamodeling score
    ("lds": Spearman across J random half-subsets of summed attributions and refitted outputs,
    `sims.engine.lds`) to every estimator, and exact LOO itself as estimator "loo"; lds_alpha in
    (0, 1) sets the subsets' fraction (default 1/2; `theory.predict(lds_alpha=)`). covariance,
    cov_param and alignment set the feature spectrum and the alignment of beta* with it
    (`theory.covariance`; default isotropic). Returns {"config", "estimators",
    "diagnostics"}; estimators[e][metric] = {"mean", "se"} for every estimator of the group "core"
    of `theory.estimators.REGISTRY` (and "variant" with variants=True) and the metrics of
    `sims.engine.metrics`. Raises InvalidParameterError, EstimatorDoesNotExistError or
    NotConvergedError (all from `theory.errors`).
    """
    enable_float64()
    sp = validate_sim(memory_budget=memory_budget, lds_alpha=lds_alpha, **params)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=sp.reps * sp.n, desc="exact LOO", unit="pt", leave=False)
    try:
        results = [run_replicate(sp, r, progress=bar.update if bar else None) for r in range(sp.reps)]
    finally:
        if bar is not None:
            bar.close()
    return aggregate(sp, results)


_EXTRA = (("memory_budget", DEFAULT_MEMORY_BUDGET), ("lds_alpha", 0.5))
validate_sim.__signature__ = declared_signature(MODEL_PARAMS + SIM_PARAMS, extra=_EXTRA)
simulate.__signature__ = declared_signature(MODEL_PARAMS + SIM_PARAMS, extra=_EXTRA + (("progress", False),))
