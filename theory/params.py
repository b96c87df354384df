"""Validation of the model parameters shared by `theory.predict` and `sims.simulate`.

One home for the rules (DESIGN.md §2 names): every check raises `InvalidParameterError` with one
sentence naming the parameter, its value and the valid range.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

from .errors import InvalidParameterError
from .covariance import COVARIANCES
from .families import get_family

PROJECTIONS = ("gaussian", "rademacher", "identity")


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


def check_choice(name, value, choices) -> str:
    """Return `value` lower-cased after checking it is one of `choices`."""
    if not isinstance(value, str) or value.lower() not in choices:
        raise InvalidParameterError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return value.lower()


@dataclass(frozen=True)
class ModelParams:
    """The proportional-regime parameters of DESIGN.md §2 (validated, normalized)."""

    family: str
    delta: float
    kappa: float
    lam: float
    lam_trak: float
    gamma: float
    sigma: float
    n_proj: int
    projection: str
    covariance: str = "isotropic"
    cov_param: float = 0.0
    alignment: float = 0.0

    def asdict(self) -> dict:
        return asdict(self)


def validate_model(*, family="logistic", delta=2.0, kappa=0.5, lam=0.1, lam_trak=0.0, gamma=1.0,
                   sigma=0.5, n_proj=1, projection="gaussian", covariance="isotropic", cov_param=0.0,
                   alignment=0.0) -> ModelParams:
    """Check and normalize the model parameters; raise `InvalidParameterError` on bad input.

    Rules: delta > 0; 0 < kappa <= 1 (kappa = k/p, k <= p), kappa = 1 when projection is
    "identity" (P = I); lam, lam_trak >= 0; gamma, sigma >= 0; n_proj >= 1 (1 for identity).
    covariance in isotropic, power, spiked, ar1 with cov_param (decay exponent <= 3, spike size,
    rho < 1) and alignment a in [-2, 2] (theta_j ~ s_j^a; see `theory.covariance`).
    TRAK's Gram matrix P^T X^T X P + lam_trak I must be invertible: lam_trak = 0 needs
    k < n (kappa < delta), and for P = I also n > p (delta > 1). The gaussian family needs
    gamma > 0 or sigma > 0 (else y = 0 and every influence vanishes). lam = 0 needs delta > 1
    (more data than parameters); for logistic the data must also be non-separable, which
    `theory` checks against the Candès–Sur boundary and `sims` detects in the fit.
    """
    fam = get_family(family).name
    delta = check_real("delta", delta, lo=0.0, lo_open=True)
    projection = check_choice("projection", projection, PROJECTIONS)
    if projection == "identity":
        kappa = 1.0 if kappa is None else check_real("kappa", kappa, lo=0.0, lo_open=True)
        if kappa != 1.0:
            raise InvalidParameterError(
                f"projection='identity' means P = I (k = p), so kappa must be 1, got {kappa:g}.")
    else:
        kappa = check_real("kappa", kappa, lo=0.0, hi=1.0, lo_open=True)
    lam = check_real("lam", lam, lo=0.0)
    lam_trak = check_real("lam_trak", lam_trak, lo=0.0)
    gamma = check_real("gamma", gamma, lo=0.0)
    sigma = check_real("sigma", sigma, lo=0.0)
    n_proj = check_int("n_proj", n_proj, lo=1)
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
    if fam == "gaussian" and gamma == 0.0 and sigma == 0.0:
        raise InvalidParameterError(
            "gaussian family with gamma = 0 and sigma = 0 has y = 0 and no influence at all; "
            "set gamma > 0 or sigma > 0.")
    if fam == "logistic" and gamma > 20:
        raise InvalidParameterError(f"gamma must be <= 20 for the logistic family, got {gamma:g}.")
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
    if fam == "poisson" and gamma > 1.5:
        raise InvalidParameterError(
            f"gamma must be <= 1.5 for the poisson family (counts ~ exp(gamma * N(0,1)) up to "
            f"e^(8 gamma)), got {gamma:g}.")
    return ModelParams(fam, delta, kappa, lam, lam_trak, gamma, sigma, n_proj, projection, covariance,
                       cov_param, alignment)
