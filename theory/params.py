"""The model parameters shared by `theory.predict` and `sims.simulate`: their declaration
(`MODEL_PARAMS`: name, type, default, help, choices) and their validation (`validate_model`).

One home: the CLI options and their help, the sweep keys, the store's columns and the figures'
model keys all derive from `MODEL_PARAMS` (names of docs/conventions.md). Every check raises
`InvalidParameterError` with one sentence naming the parameter, its value and the valid range.
"""

from __future__ import annotations

import math
import numbers
import inspect
from dataclasses import asdict, dataclass, field, make_dataclass

from .errors import InvalidParameterError
from .covariance import COVARIANCES
from .families import FAMILIES, get_family


# Magnitude bounds (docs/reliability.md). With ||x_i||^2 ~ 1 the Hessian and Gram eigenvalues are of
# order 1 to delta, so a positive ridge below RIDGE_MIN (~ sqrt of float64 epsilon) is lost in
# rounding, and beyond RIDGE_MAX the metrics no longer change with it (beta_hat ~ X^T g / lam).
# DELTA_RANGE keeps n/p within what the fixed-point solver handles (it fails for n/p << 1e-3);
# KAPPA_MIN is k = 1 at p = 10^6; SCALE_MAX keeps gamma^2, sigma^2 and y^2 far from float64
# overflow; beyond N_PROJ_MAX the 1/M terms are below the solver's 1e-12 tolerance (M = infinity).
DELTA_RANGE = (1e-3, 1e6)
KAPPA_MIN = 1e-6
RIDGE_MIN, RIDGE_MAX = 1e-8, 1e8
SCALE_MAX = 1e6
N_PROJ_MAX = 10**12


def check_real(name, value, *, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """Return `value` as a float after checking it is a finite real number within [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name} must be a real number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidParameterError(f"{name} must be finite, got {value!r}.")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        op = ">" if lo_open else ">="
        raise InvalidParameterError(f"{name} must be {op} {lo:g}, got {value:g}.")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        op = "<" if hi_open else "<="
        raise InvalidParameterError(f"{name} must be {op} {hi:g}, got {value:g}.")
    return value


def check_int(name, value, *, lo=None, hi=None) -> int:
    """Return `value` as an int after checking it is an integer within [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
            value = int(value)
        else:
            raise InvalidParameterError(f"{name} must be an integer, got {value!r}.")
    value = int(value)
    if lo is not None and value < lo:
        raise InvalidParameterError(f"{name} must be >= {lo}, got {value}.")
    if hi is not None and value > hi:
        raise InvalidParameterError(f"{name} must be <= {hi}, got {value}.")
    return value


def check_bool(name, value) -> bool:
    """Return `value` after checking it is True or False (not 1, "yes" or None)."""
    if not isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be true or false, got {value!r}.")
    return value


def check_ridge(name, value) -> float:
    """Return a ridge penalty after checking it is 0 or in [RIDGE_MIN, RIDGE_MAX]."""
    value = check_real(name, value, lo=0.0, hi=RIDGE_MAX)
    if 0.0 < value < RIDGE_MIN:
        raise InvalidParameterError(
            f"{name} must be 0 or >= {RIDGE_MIN:g} (a smaller positive ridge is numerically 0), "
            f"got {value:g}.")
    return value


def check_choice(name, value, choices) -> str:
    """Return `value` lower-cased after checking it is one of `choices`."""
    if not isinstance(value, str) or value.lower() not in choices:
        raise InvalidParameterError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return value.lower()


@dataclass(frozen=True)
class Param:
    """Declaration of one parameter: its name (the Python keyword; the CLI option is --name with
    dashes), type, default, one-line help, and choices when it is categorical."""

    name: str
    type: type
    default: object
    help: str
    choices: tuple | None = None

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


MODEL_PARAMS = (
    Param("family", str, "logistic", "GLM family", tuple(FAMILIES)),
    Param("delta", float, 2.0, "n/p, samples per parameter"),
    Param("kappa", float, 0.5, "k/p, projection size per parameter, 0 < kappa <= 1"),
    Param("lam", float, 0.1, "ridge penalty of the fit, >= 0"),
    Param("lam_trak", float, 0.0, "ridge added to TRAK's Gram matrix P^T X^T X P, >= 0"),
    Param("gamma", float, 1.0, "signal strength: beta* ~ N(0, gamma^2 I)"),
    Param("sigma", float, 0.5, "noise s.d. of the families with a noise level ("
          + ", ".join(n for n, f in FAMILIES.items() if f.uses_sigma) + ")"),
    Param("n_proj", int, 1, "M, number of independent projections averaged by TRAK"),
    Param("projection", str, "gaussian", "entries of P: N(0,1/k), +-1/sqrt(k), or P = I (no projection; kappa = 1)",
          ("gaussian", "rademacher", "identity")),
    Param("covariance", str, "isotropic", "feature spectrum: isotropic, power law s_j ~ j^-a, three spikes, AR(1)",
          COVARIANCES),
    Param("cov_param", float, 0.0, "its parameter: decay exponent a, spike size, or AR(1) rho"),
    Param("alignment", float, 0.0, "alignment of beta* with the spectrum: theta_j ~ s_j^alignment"),
)
MODEL_KEYS = tuple(p.name for p in MODEL_PARAMS)
PROJECTIONS = MODEL_PARAMS[MODEL_KEYS.index("projection")].choices
MODEL_DEFAULTS = {p.name: p.default for p in MODEL_PARAMS}


def declared_signature(params, extra=()) -> inspect.Signature:
    """The keyword-only signature of declared parameters (their defaults from the declarations),
    followed by `extra` (name, default) pairs: what `help()` and editors show for a function that
    takes the declared parameters as **kwargs."""
    kinds = [inspect.Parameter(prm.name, inspect.Parameter.KEYWORD_ONLY, default=prm.default, annotation=prm.type)
             for prm in params]
    kinds += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default) for name, default in extra]
    return inspect.Signature(kinds)


def _asdict(self) -> dict:
    return asdict(self)


ModelParams = make_dataclass(
    "ModelParams", [(prm.name, prm.type, field(default=prm.default)) for prm in MODEL_PARAMS], frozen=True,
    namespace={"asdict": _asdict, "__doc__": "The proportional-regime parameters (`MODEL_PARAMS`), validated "
                                             "and normalized (one field per declaration)."})
ModelParams.__module__ = __name__


def unknown_parameter(given, known) -> None:
    """One sentence for a keyword that no declaration knows."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise InvalidParameterError(f"unknown parameter {unknown[0]!r} (known: {', '.join(known)}).")


def validate_model(**model) -> ModelParams:
    """Check and normalize the model parameters; raise `InvalidParameterError` on bad input.

    Ranges: 1e-3 <= delta <= 1e6; 1e-6 <= kappa <= 1 (kappa = k/p, k <= p), kappa = 1 when
    projection is "identity" (P = I); lam and lam_trak are 0 or in [1e-8, 1e8]; 0 <= gamma, sigma
    <= 1e6 (and gamma <= the family's signal cap: logistic 20, probit 10, poisson 1.5); 1 <= n_proj <= 10^12 (1 for identity).
    covariance in isotropic, power, spiked, ar1 with cov_param (decay exponent <= 3, spike size
    <= 1000, rho < 1) and alignment a in [-2, 2] (theta_j ~ s_j^a; see `theory.covariance`).
    Cross-parameter rules: TRAK's Gram matrix P^T X^T X P + lam_trak I must be invertible, so
    lam_trak = 0 needs k < n (kappa < delta), and for P = I also n > p (delta > 1). lam = 0 needs
    delta > 1 (more data than parameters); for a binary family the data must also be non-separable,
    which `theory` checks against the Candès–Sur boundary and `sims` detects in the fit. A family's
    `model_problem` refuses combinations without any influence (gaussian: gamma = sigma = 0, or
    sigma = 0 with lam = 0). family may be a name or a `Family`; the record holds the name.
    """
    unknown_parameter(model, MODEL_KEYS)
    v = {**MODEL_DEFAULTS, **model}
    family, delta, kappa, lam, lam_trak, gamma, sigma, n_proj, projection, covariance, cov_param, alignment = (
        v[k] for k in MODEL_KEYS)
    family_obj = get_family(family)
    fam = family_obj.name
    delta = check_real("delta", delta, lo=0.0, lo_open=True, hi=DELTA_RANGE[1])
    if delta < DELTA_RANGE[0]:
        raise InvalidParameterError(
            f"delta must be >= {DELTA_RANGE[0]:g} (at most 1000 features per training point), got {delta:g}.")
    projection = check_choice("projection", projection, PROJECTIONS)
    if projection == "identity":
        kappa = 1.0 if kappa is None else check_real("kappa", kappa, lo=0.0, lo_open=True)
        if kappa != 1.0:
            raise InvalidParameterError(
                f"projection='identity' means P = I (k = p), so kappa must be 1, got {kappa:g}.")
    else:
        kappa = check_real("kappa", kappa, lo=0.0, hi=1.0, lo_open=True)
        if kappa < KAPPA_MIN:
            raise InvalidParameterError(
                f"kappa must be >= {KAPPA_MIN:g} (k = 1 at p = 10^6), got {kappa:g}.")
    lam = check_ridge("lam", lam)
    lam_trak = check_ridge("lam_trak", lam_trak)
    gamma = check_real("gamma", gamma, lo=0.0, hi=SCALE_MAX)
    sigma = check_real("sigma", sigma, lo=0.0, hi=SCALE_MAX)
    n_proj = check_int("n_proj", n_proj, lo=1, hi=N_PROJ_MAX)
    if projection == "identity" and n_proj != 1:
        raise InvalidParameterError(
            f"projection='identity' is deterministic, so n_proj must be 1, got {n_proj}.")
    if lam_trak == 0.0:
        if projection == "identity" and delta <= 1.0:
            raise InvalidParameterError(
                f"lam_trak = 0 without projection needs n > p (delta > 1), got delta = {delta:g}; "
                "use lam_trak > 0.")
        if projection != "identity" and kappa >= delta:
            raise InvalidParameterError(
                f"lam_trak = 0 needs k < n (kappa < delta), got kappa = {kappa:g}, delta = {delta:g}; "
                "use lam_trak > 0.")
    if lam == 0.0 and delta <= 1.0:
        raise InvalidParameterError(
            f"lam = 0 needs n > p (delta > 1) for the estimator to be unique, got delta = {delta:g}.")
    problem = family_obj.model_problem(gamma, sigma, lam) if family_obj.model_problem else None
    if problem:
        raise InvalidParameterError(problem)
    if family_obj.signal_cap is not None and gamma > family_obj.signal_cap:
        raise InvalidParameterError(
            f"gamma must be <= {family_obj.signal_cap:g} for the {fam} family, got {gamma:g}.")
    covariance = check_choice("covariance", covariance, COVARIANCES)
    cov_param = check_real("cov_param", cov_param, lo=0.0)
    alignment = check_real("alignment", alignment, lo=-2.0, hi=2.0)
    if covariance == "ar1" and cov_param >= 1.0:
        raise InvalidParameterError(f"cov_param (rho) of an ar1 covariance must be < 1, got {cov_param:g}.")
    if covariance == "power" and cov_param > 3.0:
        raise InvalidParameterError(f"cov_param (decay exponent) of a power covariance must be <= 3, got {cov_param:g}.")
    if covariance == "spiked" and cov_param > 1000.0:
        raise InvalidParameterError(f"cov_param (spike size) must be <= 1000, got {cov_param:g}.")
    if covariance == "isotropic" and (cov_param != 0.0 or alignment != 0.0):
        raise InvalidParameterError("cov_param and alignment apply to a non-isotropic covariance; "
                                    "set covariance to power, spiked or ar1.")
    return ModelParams(fam, delta, kappa, lam, lam_trak, gamma, sigma, n_proj, projection, covariance,
                       cov_param, alignment)


validate_model.__signature__ = declared_signature(MODEL_PARAMS)
