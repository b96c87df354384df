"""Numerical edge cases: each either gives finite, sensible numbers or a named refusal.

Documented behaviour (docs/reliability.md): small lam on the separable side converges (exact LOO
resolves points with tiny |g_i| to the rounding level of the gradient), lam = 0 on the separable
side is refused as non-existent; very
large gamma, very small or large lam, k = 1, k = p, n < p, M = 1 or large, tiny p all work;
poisson with large linear predictors is overflow-safe.
"""

import math

import numpy as np
import pytest

import sims
import theory
from theory.errors import EstimatorDoesNotExistError, InvalidParameterError

FAST = dict(n_test=3, reps=1, seed=0)


def finite(result):
    return all(math.isfinite(c["mean"]) for row in result["estimators"].values() for c in row.values())


@pytest.mark.parametrize("kw", [
    dict(family="logistic", p=30, delta=1.5, lam=1e-3, gamma=2.0),                 # separable side, small lam
    dict(family="logistic", p=30, delta=2.0, lam=0.1, gamma=15.0),                 # huge signal
    dict(family="logistic", p=30, delta=2.0, lam=1e4),                             # huge ridge
    dict(family="logistic", p=30, delta=2.0, lam=0.1, kappa=1 / 30),               # k = 1
    dict(family="poisson", p=30, delta=2.0, lam=0.1, kappa=1.0, gamma=1.5),        # k = p, large counts
    dict(family="gaussian", p=30, delta=0.3, lam=0.1, kappa=0.1, lam_trak=0.1),    # n < p
    dict(family="logistic", p=20, delta=2.0, lam=0.1, n_proj=64),                  # many projections
    dict(family="logistic", p=2, delta=2.0, lam=0.1, kappa=0.5),                   # tiny p (n = 4)
    dict(family="logistic", p=30, delta=3.0, lam=0.0, gamma=0.5),                  # lam = 0, non-separable
])
def test_simulation_edge_cases_are_finite(kw):
    """Each of these is documented to work (docs/reliability.md): no refusal is acceptable."""
    r = sims.simulate(**kw, **FAST)
    assert finite(r)


def test_lam_zero_separable_simulation_is_refused():
    with pytest.raises(EstimatorDoesNotExistError, match="separable"):
        sims.simulate(family="logistic", p=20, delta=1.2, lam=0.0, gamma=3.0, lam_trak=0.1, **FAST)


@pytest.mark.parametrize("kw", [
    dict(family="logistic", delta=1.5, lam=1e-6),            # deep on the separable side (c ~ 1e5)
    dict(family="logistic", delta=4.0, lam=1e-8),            # essentially the MLE
    dict(family="logistic", delta=4.0, lam=0.0),             # the MLE (delta > delta_sep(1) = 2.28)
    dict(family="logistic", gamma=15.0),
    dict(family="logistic", lam=1e4),
    dict(family="gaussian", kappa=1e-3),
    dict(family="logistic", n_proj=10**6),
    dict(family="poisson", gamma=1.5),
    dict(family="gaussian", delta=1.05, lam=0.0, kappa=0.5, lam_trak=0.0),
])
def test_theory_edge_cases_are_finite(kw):
    r = theory.predict(**kw)
    assert all(math.isfinite(v) for row in r["estimators"].values() for v in row.values())


def test_theory_refuses_nonexistent_estimators():
    with pytest.raises(EstimatorDoesNotExistError, match="separable"):
        theory.predict(family="logistic", delta=2.0, lam=0.0, gamma=1.0)
    with pytest.raises(InvalidParameterError, match="n > p"):
        theory.predict(family="poisson", delta=0.9, lam=0.0, lam_trak=0.1)


def test_mle_limit_is_continuous_in_lam():
    at0 = theory.predict(family="logistic", delta=4.0, lam=0.0)["estimators"]["trak"]["pearson"]
    near = theory.predict(family="logistic", delta=4.0, lam=1e-7)["estimators"]["trak"]["pearson"]
    assert at0 == pytest.approx(near, abs=1e-5)


def test_poisson_fit_with_large_linear_predictor_is_overflow_safe():
    import jax
    from sims.engine.data import make_data
    from sims.engine.fit import check_fit, newton_fit

    d = make_data(jax.random.PRNGKey(0), family="poisson", n=400, p=20, n_test=1, gamma=1.5, sigma=0.0)
    fit = check_fit(newton_fit(d.X, d.y, 1e-3, family="poisson"), d.X, d.y, 1e-3, "poisson")
    assert np.all(np.isfinite(np.asarray(fit.beta))) and float(np.max(d.y)) > 50   # counts up to e^(4.5)
