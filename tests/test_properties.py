"""Property-based tests (hypothesis) of the `sims` and `theory` APIs."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sims
import theory
from theory.errors import EstimatorDoesNotExistError, InvalidParameterError, NotConvergedError, TrakSimError
from theory.families import FAMILIES

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def examples(fast: int, slow: int):
    """Run a property with `fast` examples in `make test` (none if 0: simulations that other fast
    tests cover) and `slow` examples in `make validate`: the test takes `n_examples` and applies
    it with `settings(max_examples=n_examples)`."""
    params = [fast] if fast else []
    return pytest.mark.parametrize("n_examples", params + [pytest.param(slow, marks=pytest.mark.slow)])

# A few shapes only, so that jit compilations are shared between examples.
valid_sim = st.fixed_dictionaries({
    "family": st.sampled_from(sorted(FAMILIES)),
    "p": st.sampled_from([12, 20]),
    "delta": st.sampled_from([0.5, 2.0]),
    "kappa": st.sampled_from([0.25, 1.0]),
    "lam": st.floats(0.05, 5.0),
    "lam_trak": st.floats(0.01, 2.0),
    "gamma": st.floats(0.0, 1.0),
    "sigma": st.floats(0.1, 1.0),
    "n_proj": st.sampled_from([1, 3]),
    "projection": st.sampled_from(["gaussian", "rademacher"]),
    "seed": st.integers(0, 2**31),
})


@examples(0, 12)
def test_valid_simulations_give_finite_metrics_in_range(n_examples):
    settings(max_examples=n_examples, **SETTINGS)(given(cfg=valid_sim)(_check_valid_simulation))()


def _check_valid_simulation(cfg):
    r = sims.simulate(**cfg, n_test=3, reps=1)
    for est, row in r["estimators"].items():
        for metric, cell in row.items():
            assert math.isfinite(cell["mean"]) and math.isfinite(cell["se"]) and cell["se"] >= 0
        assert -1 - 1e-12 <= row["pearson"]["mean"] <= 1 + 1e-12
        assert -1 - 1e-12 <= row["spearman"]["mean"] <= 1 + 1e-12
        assert row["rel_error"]["mean"] >= 0
        assert 0 <= row["top_overlap"]["mean"] <= 1
    # the Newton step (ALO) is at least as close to LOO as the influence function
    assert r["estimators"]["ns"]["rel_error"]["mean"] <= r["estimators"]["if"]["rel_error"]["mean"] + 1e-12


valid_model = st.fixed_dictionaries({
    "family": st.sampled_from(sorted(FAMILIES)),
    "delta": st.floats(0.3, 6.0),
    "kappa": st.floats(0.02, 1.0),
    "lam": st.floats(1e-3, 10.0),
    "lam_trak": st.floats(1e-3, 10.0),
    "gamma": st.sampled_from([0.5, 1.0]),
    "sigma": st.sampled_from([0.0, 0.5, 2.0]),     # (gaussian: each sigma compiles its own law)
    "n_proj": st.integers(1, 64),
})


@examples(5, 40)
def test_predictions_are_finite_and_in_range(n_examples):
    settings(max_examples=n_examples, **SETTINGS)(given(cfg=valid_model)(_check_prediction))()


def _check_prediction(cfg):
    r = theory.predict(**cfg)
    for est, row in r["estimators"].items():
        assert all(math.isfinite(v) for v in row.values())
        assert -1 - 1e-9 <= row["pearson"] <= 1 + 1e-9
        assert -1 - 1e-9 <= row["spearman"] <= 1 + 1e-9
        assert row["rel_error"] >= 0
    # NS is exact in the limit; more projections never hurt TRAK (tau(B^2) >= s2). (IF does NOT
    # always rank better than TRAK: for poisson its leverage factor 1/(1 + c w) varies widely.)
    assert r["estimators"]["ns"]["rel_error"] == 0
    assert r["constants"]["c"] > 0 and r["constants"]["tau_A2"] > 0
    assert r["constants"]["tau_B2"] >= r["constants"]["s2"] * (1 - 1e-9)
    more = theory.predict(**{**cfg, "n_proj": cfg["n_proj"] + 1})
    assert more["estimators"]["trak"]["pearson"] >= r["estimators"]["trak"]["pearson"] - 1e-12


small_sim = st.fixed_dictionaries({
    "family": st.sampled_from(["logistic", "poisson"]),
    "delta": st.sampled_from([1.0, 2.0]),
    "kappa": st.sampled_from([0.25, 0.5]),
    "lam": st.floats(0.2, 2.0),
    "seed": st.integers(0, 1000),
})


@examples(0, 12)
def test_theory_and_simulation_agree_generously(n_examples):
    settings(max_examples=n_examples, **SETTINGS)(given(cfg=small_sim)(_check_generous_agreement))()


def _check_generous_agreement(cfg):
    """At p = 60 the finite-size error is large; within 0.25 all the same (a loose property)."""
    gamma = 0.5
    r = sims.simulate(**cfg, gamma=gamma, p=60, n_test=10, reps=1)
    th = theory.predict(family=cfg["family"], delta=cfg["delta"], kappa=cfg["kappa"], lam=cfg["lam"], gamma=gamma)
    for est in ("if", "trak"):
        for metric in ("pearson", "spearman"):
            assert abs(r["estimators"][est][metric]["mean"] - th["estimators"][est][metric]) < 0.25


# ----------------------------------------------------------------- the full documented space
# theory.params.validate_model: delta in [1e-3, 1e6], kappa in [1e-6, 1], lam and lam_trak 0 or in
# [1e-8, 1e8], gamma and sigma up to 1e6 (logistic gamma <= 20, probit <= 10, poisson <= 1.5), n_proj up to
# 10^12, projection identity, non-isotropic covariance, variants; plus the cross-parameter rules.
# gamma takes a few values per family only: each value compiles its own quadrature (gamma = 0 with a
# non-isotropic covariance has its own test at the end of the file).
GAMMAS = {"gaussian": (0.0, 1.0, 1e6), "logistic": (20.0, 1.0), "poisson": (1.5, 1.0), "probit": (10.0, 1.0)}
SIGMAS = (0.0, 0.5, 1e6)
COV_PARAMS = {"power": st.floats(0.0, 3.0), "spiked": st.floats(0.0, 1000.0), "ar1": st.floats(0.0, 0.99)}


def log_uniform(lo_exp, hi_exp):
    return st.floats(lo_exp, hi_exp).map(lambda e: 10.0 ** e)


def ridge(zero_allowed):
    return st.one_of(st.just(0.0), log_uniform(-8, 8)) if zero_allowed else log_uniform(-8, 8)


@st.composite
def model_configs(draw, *, delta, kappa, n_proj, covariances, variants, k_lt_n=None):
    """A valid configuration: `k_lt_n(kappa, delta)` says whether lam_trak = 0 is allowed
    (default kappa < delta, the proportional-limit rule)."""
    family = draw(st.sampled_from(sorted(GAMMAS)))
    gamma = draw(st.sampled_from(GAMMAS[family]))
    sigma = draw(st.sampled_from(SIGMAS[1:] if family == "gaussian" and gamma == 0 else SIGMAS))
    d = draw(delta)
    lam = draw(ridge(d > 1 and not (family == "gaussian" and sigma == 0)))
    projection = draw(st.sampled_from(["gaussian", "rademacher", "identity"]))
    if projection == "identity":
        kap, m, zero_ok = 1.0, 1, d > 1
    else:
        kap, m = draw(kappa), draw(n_proj)
        zero_ok = (k_lt_n or (lambda k_, d_: k_ < d_))(kap, d)
    cfg = dict(family=family, gamma=gamma, sigma=sigma, delta=d, lam=lam, lam_trak=draw(ridge(zero_ok)),
               projection=projection, kappa=kap, n_proj=m, covariance="isotropic")
    if gamma == GAMMAS[family][1]:   # (one gamma per family: each compiles its own general solver)
        cfg["covariance"] = draw(st.sampled_from(covariances))
    if cfg["covariance"] != "isotropic":
        cfg["cov_param"] = draw(COV_PARAMS[cfg["covariance"]])
        cfg["alignment"] = draw(st.floats(-2.0, 2.0))
    # variants: every covariance
    cfg["variants"] = variants(cfg) and draw(st.booleans())
    return cfg


def assert_named_refusal(err, cfg):
    """The refusals docs/reliability.md allows for a valid configuration."""
    assert isinstance(err, (NotConvergedError, EstimatorDoesNotExistError)), repr(err)
    if isinstance(err, EstimatorDoesNotExistError):
        assert cfg["lam"] == 0.0
    message = str(err)
    assert message.endswith(".") and "\n" not in message


documented_model = model_configs(delta=log_uniform(-3, 6), kappa=st.one_of(st.just(1.0), log_uniform(-6, 0)),
                                 n_proj=st.one_of(st.integers(1, 64), st.integers(1, 10**12)),
                                 covariances=["isotropic"] * 3 + ["power", "spiked", "ar1"],
                                 variants=lambda c: True)


@examples(6, 60)
def test_predictions_over_the_documented_space_are_finite_in_range_or_refused(n_examples):
    settings(max_examples=n_examples, **SETTINGS)(given(cfg=documented_model)(_check_documented_prediction))()


def _check_documented_prediction(cfg):
    p = 20 if cfg["covariance"] != "isotropic" else None
    try:
        r = theory.predict(**cfg, p=p)
    except TrakSimError as err:
        assert_named_refusal(err, cfg)
        return
    # The population Spearman is a quadrature of the limit law, accurate to ~1e-4 (~3e-3 deep on the
    # separable side, q = ||beta_hat||^2/p > 300; docs/reliability.md): it may overshoot 1 by that.
    spearman_slack = 1e-4
    for name, row in r["estimators"].items():
        assert all(math.isfinite(v) for v in row.values()), (name, row)
        assert -1 - 1e-9 <= row["pearson"] <= 1 + 1e-9, (name, row)
        assert -1 - spearman_slack <= row["spearman"] <= 1 + spearman_slack, (name, row)
        assert row["rel_error"] >= 0, (name, row)


@examples(3, 16)
def test_simulations_over_the_documented_space_are_finite_in_range_or_refused(n_examples):
    settings(max_examples=n_examples, **SETTINGS)(given(data=st.data())(_check_documented_simulation))()


def _check_documented_simulation(data):
    p = 12   # one p (n = 6 or 24, k = 3 or 12): compilations are shared between examples
    cfg = data.draw(model_configs(
        delta=st.sampled_from([0.5, 2.0]), kappa=st.sampled_from([0.25, 1.0]), n_proj=st.sampled_from([1, 3]),
        covariances=["isotropic", "isotropic", "power", "spiked", "ar1"], variants=lambda c: True,
        k_lt_n=lambda k_, d_: max(1, round(k_ * p)) < round(d_ * p)))
    n = round(cfg["delta"] * p)
    sim = dict(p=p, n_test=3, reps=1, seed=data.draw(st.integers(0, 2**31)),
               design=data.draw(st.sampled_from(["gaussian", "rademacher", "student_t"])),
               lds_subsets=data.draw(st.sampled_from([0, 0, 4])), tol=data.draw(st.sampled_from([1e-10, 1e-6])),
               top_m=data.draw(st.one_of(st.none(), st.integers(1, n))))
    try:
        r = sims.simulate(**cfg, **sim)
    except TrakSimError as err:
        assert_named_refusal(err, cfg)
        return
    for name, row in r["estimators"].items():
        for metric, cell in row.items():
            assert math.isfinite(cell["mean"]) and math.isfinite(cell["se"]) and cell["se"] >= 0, (name, metric)
        for metric in ("pearson", "spearman", "lds"):
            if metric in row:
                assert -1 - 1e-12 <= row[metric]["mean"] <= 1 + 1e-12, (name, metric, row[metric])
        assert row["rel_error"]["mean"] >= 0
        assert 0 <= row["top_overlap"]["mean"] <= 1


# --------------------------------------------------------------------------------- invalid input
HUGE = [1e300, -1e300, 1e20, 10**30]
NON_FINITE = [float("nan"), float("inf"), float("-inf")]
WRONG_TYPES = ["2", None, True, [1], {"x": 1}, 1 + 2j, b"1"]


def beyond(lo=None, hi=None):
    """Floats just outside [lo, hi], or far outside."""
    parts = []
    if lo is not None:
        parts.append(st.floats(max_value=lo, exclude_max=True, allow_nan=False, allow_infinity=False,
                               min_value=-1e300))
    if hi is not None:
        parts.append(st.floats(min_value=hi, exclude_min=True, allow_nan=False, allow_infinity=False))
    return st.one_of(*parts, st.sampled_from(NON_FINITE + WRONG_TYPES))


# Bad values of each parameter, alone (every other parameter at its default), for predict and simulate.
BAD_MODEL = {
    "family": st.sampled_from([3, "cauchy", None, "", "gauss", True]),
    "delta": st.one_of(beyond(lo=1e-3, hi=1e6), st.sampled_from([0, -1.0] + HUGE)),
    "kappa": st.one_of(beyond(lo=1e-6, hi=1.0), st.sampled_from([0, 1e-300, -1e300, 1e300])),
    "lam": st.one_of(beyond(lo=0.0, hi=1e8), st.floats(1e-300, 1e-8, exclude_max=True), st.sampled_from(HUGE)),
    "lam_trak": st.one_of(beyond(lo=0.0, hi=1e8), st.floats(1e-300, 1e-8, exclude_max=True)),
    "gamma": st.one_of(beyond(lo=0.0, hi=20.0), st.sampled_from(HUGE)),   # default family logistic
    "sigma": beyond(lo=0.0, hi=1e6),
    "n_proj": st.one_of(st.integers(max_value=0), st.integers(min_value=10**12 + 1),
                        st.sampled_from([1.5, "4", True, None, float("nan"), float("inf"), 1e300])),
    "projection": st.sampled_from(["sparse", "Identity ", 1, None, ""]),
    "covariance": st.sampled_from(["toeplitz", "", 0, None]),
    "cov_param": st.sampled_from([0.5, -1.0, float("nan"), "1", 1e300]),      # isotropic takes none
    "alignment": st.one_of(beyond(lo=-2.0, hi=2.0), st.sampled_from([0.5, -0.5])),   # (isotropic: none)
    "variants": st.sampled_from(["yes", 1, 0, None, "false"]),
}

# Cross-parameter violations (each value in its own range).
CROSS = [
    st.builds(lambda d, k: dict(delta=d, kappa=k, lam_trak=0.0), st.floats(1e-3, 0.9), st.floats(0.95, 1.0)),
    st.builds(lambda k: dict(projection="identity", kappa=k), st.floats(1e-6, 0.999)),
    st.builds(lambda m: dict(projection="identity", kappa=1.0, lam_trak=0.1, n_proj=m), st.integers(2, 10**12)),
    st.builds(lambda d: dict(projection="identity", kappa=1.0, lam_trak=0.0, delta=d), st.floats(1e-3, 1.0)),
    st.builds(lambda d: dict(lam=0.0, delta=d, lam_trak=0.1, kappa=0.1 * d), st.floats(1e-2, 1.0)),
    st.just(dict(family="gaussian", gamma=0.0, sigma=0.0)),
    st.builds(lambda d: dict(family="gaussian", sigma=0.0, lam=0.0, delta=d), st.floats(1.01, 1e6)),
    st.builds(lambda g: dict(family="logistic", gamma=g), st.floats(20.0, 1e6, exclude_min=True)),
    st.builds(lambda g: dict(family="poisson", gamma=g), st.floats(1.5, 1e6, exclude_min=True)),
    st.builds(lambda g: dict(family="probit", gamma=g), st.floats(10.0, 1e6, exclude_min=True)),
    st.builds(lambda c: dict(covariance="ar1", cov_param=c), st.floats(1.0, 1e300)),
    st.builds(lambda c: dict(covariance="power", cov_param=c), st.floats(3.0, 1e300, exclude_min=True)),
    st.builds(lambda c: dict(covariance="spiked", cov_param=c), st.floats(1000.0, 1e300, exclude_min=True)),
    st.builds(lambda c: dict(covariance=c, cov_param=-1.0), st.sampled_from(["power", "spiked", "ar1"])),
]

# Simulation-only parameters (at p = 10 unless p itself is the bad one: n = 20, k = 5).
BAD_SIM = {
    "p": st.one_of(st.integers(max_value=1), st.integers(min_value=200_001),
                   st.sampled_from([2.5, "ten", None, float("nan"), True, 1e300])),
    "n_test": st.one_of(st.integers(max_value=0), st.integers(min_value=100_001), st.sampled_from([2.5, "3"])),
    "reps": st.one_of(st.integers(max_value=0), st.integers(min_value=100_001), st.sampled_from([None, "3"])),
    "seed": st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63), st.sampled_from([0.5, "0"])),
    "top_m": st.one_of(st.integers(max_value=0), st.integers(min_value=21), st.sampled_from([1.5, "3"])),
    "tol": st.one_of(beyond(lo=1e-15, hi=1e-4), st.just(0.0)),
    "design": st.sampled_from(["normal", "student", "", None, 1]),
    "lds_subsets": st.one_of(st.sampled_from([1, 2, 2.5, "4", None]), st.integers(max_value=-1),
                             st.integers(min_value=10_001)),
    "memory_budget": st.one_of(st.integers(max_value=2**20 - 1), st.integers(min_value=2**60),
                               st.sampled_from([1.5, "512", None])),
    "n_proj": st.integers(10_001, 10**12),
    "variants": st.sampled_from(["yes", 1, None]),
}
SIM_CROSS = [
    st.just(dict(p=200_000, delta=100.0)),                   # a replicate beyond any memory
    st.builds(lambda p: dict(p=p, delta=2.0 / p), st.integers(2, 100)),   # n = 2 < 4
    st.just(dict(p=10, kappa=1.0, delta=1.0, lam_trak=0.0)),           # k = n
    st.just(dict(p=10, kappa=0.454, delta=0.46, lam_trak=0.0)),        # kappa < delta, yet k = n = 5
]


def _check_refusal(fn, kwargs):
    with pytest.raises(InvalidParameterError) as exc:
        fn(**kwargs)
    message = str(exc.value)
    assert message.endswith(".") and "\n" not in message, message
    return message


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data())
def test_invalid_model_parameters_raise_the_named_error_and_nothing_else(data):
    if data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(BAD_MODEL)))
        kwargs = {key: data.draw(BAD_MODEL[key], label=key)}
    else:
        kwargs = data.draw(st.one_of(*CROSS), label="cross")
    if data.draw(st.booleans(), label="simulate"):
        _check_refusal(sims.simulate, {**kwargs, "p": 10})
    else:
        _check_refusal(theory.predict, kwargs)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.data())
def test_invalid_simulation_parameters_raise_the_named_error_and_nothing_else(data):
    if data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(BAD_SIM)))
        kwargs = {"p": 10, key: data.draw(BAD_SIM[key], label=key)}
    else:
        kwargs = data.draw(st.one_of(*SIM_CROSS), label="cross")
    _check_refusal(sims.simulate, kwargs)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(p=st.one_of(st.integers(max_value=1), st.integers(min_value=10**6 + 1),
                   st.sampled_from([2.5, "ten", float("nan"), True])),
       covariance=st.sampled_from(["isotropic", "power"]))
def test_predict_validates_p_for_every_covariance(p, covariance):
    _check_refusal(theory.predict, dict(p=p, covariance=covariance, cov_param=1.0 if covariance == "power" else 0.0))


def test_non_isotropic_theory_needs_p_and_has_no_lds():
    _check_refusal(theory.predict, dict(covariance="power", cov_param=1.0))
    _check_refusal(theory.predict, dict(covariance="power", cov_param=1.0, p=20, lds_alpha=0.5))


@pytest.mark.parametrize("lam", [1e-4, 1e-8])
def test_spearman_deep_on_the_separable_side_is_a_correlation(lam):
    """logistic n/p = 2 < delta_sep: as lam -> 0 the law of log|g| spreads over hundreds of units
    and is bimodal; IF's Spearman (Monte Carlo of the limit law: 0.9921 at lam = 1e-4) was 1.02 at
    lam = 1e-8 (clipped compression, windowed quadrature)."""
    r = theory.predict(family="logistic", delta=2.0, gamma=1.0, lam=lam)["estimators"]
    assert 0.99 <= r["if"]["spearman"] <= 1.0
    assert 0 < r["trak"]["spearman"] < r["trak"]["pearson"] < 1


def test_variants_of_a_full_rank_sketch_without_ridge_equal_if_and_ns():
    """kappa = 1, lamT = lam = 0: the weighted sketch is H^{-1} itself, so trak_wlev = NS; the
    difference quotient of tau(A B_w) used to cancel catastrophically here (Pearson 0 predicted)."""
    r = theory.predict(family="gaussian", delta=1e4, lam=0.0, lam_trak=0.0, kappa=1.0, variants=True)
    assert r["estimators"]["trak_wlev"]["pearson"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["logistic", "poisson"])
def test_general_covariance_theory_at_zero_signal(family):
    """gamma = 0: no signal, so m = 0 and (with s = 1) the isotropic fixed point."""
    r = theory.predict(family=family, gamma=0.0, covariance="power", cov_param=1.0, p=20)
    assert r["constants"]["m"] == pytest.approx(0.0, abs=1e-10)
    flat = theory.predict(family=family, gamma=0.0, covariance="power", cov_param=0.0, p=20)
    iso = theory.predict(family=family, gamma=0.0)
    for e in ("if", "trak"):
        for k in ("pearson", "spearman"):
            assert flat["estimators"][e][k] == pytest.approx(iso["estimators"][e][k], abs=1e-8)


def test_errors_are_all_trak_sim_errors():
    assert issubclass(InvalidParameterError, TrakSimError) and issubclass(InvalidParameterError, ValueError)
    assert np.isfinite(theory.predict()["estimators"]["trak"]["pearson"])
