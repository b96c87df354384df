"""Validation rules of `theory.params.validate_model`, `theory.predict` and `sims.validate_sim`
(docs/reliability.md): each bad input is refused with one sentence, before any computation."""

import importlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

import sims
import theory
from theory.errors import InvalidParameterError, NotConvergedError
from theory.fixed_point import solve_fixed_point
from theory.params import validate_model

SIM = dict(p=10, n_test=2, reps=1)
simulate_module = importlib.import_module("sims.engine.simulate")   # `sims.simulate` is the function


def refused(fn, match, **kwargs):
    with pytest.raises(InvalidParameterError, match=match) as exc:
        fn(**kwargs)
    message = str(exc.value)
    assert message.endswith(".") and "\n" not in message
    return message


@pytest.mark.parametrize("kw, match", [
    (dict(family="gaussian", gamma=1e300), "gamma must be <= 1e\\+06"),
    (dict(family="gaussian", sigma=1e300), "sigma must be <= 1e\\+06"),
    (dict(n_proj=10**20), "n_proj must be <= 1000000000000"),
    (dict(delta=1e300), "delta must be <= 1e\\+06"),
    (dict(delta=1e-4, lam_trak=0.1), "delta must be >= 0.001"),
    (dict(kappa=1e-7), "kappa must be >= 1e-06"),
    (dict(lam=1e300), "lam must be <= 1e\\+08"),
    (dict(lam=1e-300), "lam must be 0 or >= 1e-08"),
    (dict(lam_trak=1e9), "lam_trak must be <= 1e\\+08"),
    (dict(lam_trak=1e-9), "lam_trak must be 0 or >= 1e-08"),
    (dict(family="gaussian", sigma=0.0, lam=0.0), "sigma = 0 and lam = 0"),
])
def test_magnitude_and_degeneracy_rules_in_theory_and_simulation(kw, match):
    refused(validate_model, match, **kw)
    refused(theory.predict, match, **kw)
    refused(sims.validate_sim, match, **kw, **SIM)


def test_the_bounds_themselves_are_valid():
    for kw in (dict(family="gaussian", gamma=1e6, sigma=1e6), dict(n_proj=10**12), dict(delta=1e6),
               dict(delta=1e-3, lam_trak=0.1), dict(kappa=1e-6), dict(lam=1e8, lam_trak=1e8),
               dict(lam=1e-8, lam_trak=1e-8), dict(family="gaussian", sigma=0.0, lam=0.1)):
        validate_model(**kw)
    r = theory.predict(family="gaussian", gamma=1e6, sigma=1e6)
    assert all(np.isfinite(v) for row in r["estimators"].values() for v in row.values())
    # fig_nproj takes M = 10^9 as the M -> infinity limit
    assert np.isfinite(theory.predict(n_proj=10**9)["estimators"]["trak"]["pearson"])


@pytest.mark.parametrize("p", [-7, 0, 1, 2.5, "10", 10**7, True])
def test_predict_validates_p_even_for_an_isotropic_covariance(p):
    refused(theory.predict, "^p must be", p=p)


def test_predict_ignores_a_valid_p_for_an_isotropic_covariance():
    assert theory.predict(p=50)["estimators"] == theory.predict()["estimators"]


@pytest.mark.parametrize("value", ["yes", 1, 0, None, np.bool_(True)])
def test_variants_must_be_a_bool_in_theory_and_simulation(value):
    refused(theory.predict, "variants must be true or false", variants=value)
    refused(theory.predict_curve, "variants must be true or false", vary="kappa", values=[0.5],
            variants=value)
    refused(sims.validate_sim, "variants must be true or false", variants=value, **SIM)


def test_simulation_bounds_n_proj_and_the_memory_budget():
    refused(sims.validate_sim, "n_proj must be <= 10000 in a simulation", n_proj=20_000, **SIM)
    refused(sims.validate_sim, "memory_budget must be <= the", memory_budget=2**80, **SIM)
    assert sims.validate_sim(n_proj=10_000, **SIM).model.n_proj == 10_000


def test_a_replicate_that_cannot_fit_in_memory_is_refused_up_front():
    message = refused(sims.simulate, "needs about .* more than the", p=200_000, delta=100)
    assert "n = 20000000" in message and "p x p Hessian inverse" in message


def test_the_memory_estimate_counts_design_hessian_and_influences(monkeypatch):
    need = simulate_module.replicate_memory(n=4000, p=2000, k=1000, n_test=50)
    assert need >= 8 * (2 * 4000 * 2000 + 2 * 2000**2 + 8 * 50 * 4000)
    assert simulate_module.replicate_memory(n=4000, p=2000, k=1000, n_test=50, variants=True) > need
    monkeypatch.setattr(simulate_module, "available_memory", lambda: (64 * 2**20, "test memory"))
    refused(sims.validate_sim, "more than the test memory \\(64 MiB\\)", p=2000, delta=2.0,
            memory_budget=2**20)
    assert sims.validate_sim(p=40, memory_budget=2**20).p == 40


def test_available_memory_is_positive():
    nbytes, where = simulate_module.available_memory()
    assert nbytes >= 2**20 and where


def test_gaussian_noiseless_interpolation_is_refused_but_noiseless_ridge_works():
    refused(sims.simulate, "sigma = 0 and lam = 0", family="gaussian", sigma=0.0, lam=0.0, **SIM)
    r = theory.predict(family="gaussian", sigma=0.0, lam=0.1)
    assert all(np.isfinite(v) for row in r["estimators"].values() for v in row.values())


@pytest.mark.parametrize("delta, lam", [(1e300, 0.1), (2.0, 1e300), (1e-300, 0.1)])
def test_the_solver_refuses_absurd_values_without_a_runtime_warning(delta, lam):
    """Below validation (solve_fixed_point is internal), a non-finite start is a NotConvergedError
    and no numpy RuntimeWarning (these used to reach the terminal before the error sentence)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NotConvergedError):
            solve_fixed_point(theory.get_family("logistic"), delta, lam, 1.0, 0.5)


@pytest.mark.parametrize("kw", [
    dict(family="poisson", delta=1.0, lam=1e4, gamma=1.5),       # strong ridges: the start a = gamma/2
    pytest.param(dict(family="logistic", delta=1e-3, lam=1e5, gamma=0.5, lam_trak=0.1),  # is far from
                 marks=pytest.mark.slow),                                               # a ~ 1/lam
    pytest.param(dict(family="poisson", delta=0.01, lam=1e6, gamma=1.5, lam_trak=0.1), marks=pytest.mark.slow),
    pytest.param(dict(family="logistic", delta=1.0, lam=1e8, gamma=0.5), marks=pytest.mark.slow),
])
def test_strong_ridges_converge(kw):
    r = theory.predict(**kw)
    near = theory.predict(**{**kw, "lam": kw["lam"] * 0.99})
    for e in ("if", "trak"):
        for m in ("pearson", "spearman"):
            assert -1 <= r["estimators"][e][m] <= 1
            assert r["estimators"][e][m] == pytest.approx(near["estimators"][e][m], abs=1e-2)


def test_cli_prints_only_the_sentence_for_absurd_magnitudes():
    """In a real process (no pytest warning capture): exit 2 and one line on stderr per command."""
    argvs = [["predict", "--delta", "1e300"], ["predict", "--lam", "1e300"],
             ["predict", "--family", "gaussian", "--gamma", "1e300"], ["simulate", "--n-proj", str(10**20)]]
    code = f"from sims.cli import main; print([main(a) for a in {argvs!r}])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[2, 2, 2, 2]", (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == len(argvs) and all(line.startswith("trak-sim: error: ") for line in lines), lines
