"""Theory against simulation (exact LOO) across families, n/p, k/p, lam, M and projections.

Fast suite: 15 configurations at p = 200 (four with the corrected TRAK variants, one of them
under a power-law feature covariance; two with a power-law or AR(1) covariance; two of the probit family). `make validate` (marked slow): the same at p = 400 and
p = 800, printing the table, and checking that the discrepancy shrinks as p doubles. Tolerance:
3 Monte-Carlo standard errors plus the finite-size allowance of `sims.runs.compare` (scaled by
sqrt(400/p)).
"""

import math

import numpy as np
import pytest

import sims
from sims.runs.compare import compare, format_comparisons
from theory.estimators import estimators_for

CONFIGS = {
    "logistic-base": dict(family="logistic", delta=2.0, gamma=1.0, lam=0.1, kappa=0.5, lam_trak=0.0, n_proj=1),
    "logistic-smalllam-M4": dict(family="logistic", delta=4.0, gamma=1.0, lam=0.01, kappa=0.1, lam_trak=0.0, n_proj=4),
    "logistic-n<p": dict(family="logistic", delta=0.5, gamma=2.0, lam=1.0, kappa=0.1, lam_trak=1.0, n_proj=1),
    "logistic-noproj": dict(family="logistic", delta=1.0, gamma=1.0, lam=0.3, kappa=1.0, lam_trak=0.3, n_proj=1,
                            projection="identity"),
    "logistic-rademacher": dict(family="logistic", delta=2.0, gamma=1.0, lam=0.1, kappa=0.25, lam_trak=0.1, n_proj=1,
                                projection="rademacher"),
    "poisson-kappa1": dict(family="poisson", delta=2.0, gamma=0.5, lam=0.1, kappa=1.0, lam_trak=0.0, n_proj=1),
    "poisson-M4": dict(family="poisson", delta=4.0, gamma=0.3, lam=0.01, kappa=0.5, lam_trak=0.01, n_proj=4),
    "gaussian-n<p-M4": dict(family="gaussian", delta=0.5, gamma=1.0, sigma=1.0, lam=1.0, kappa=0.1, lam_trak=0.0,
                            n_proj=4),
    "gaussian-kappa1": dict(family="gaussian", delta=2.0, gamma=1.0, sigma=0.5, lam=0.1, kappa=1.0, lam_trak=0.1,
                            n_proj=1),
    "logistic-variants": dict(family="logistic", delta=2.0, gamma=2.0, lam=0.1, kappa=1.0, lam_trak=0.1,
                              n_proj=1, variants=True),
    "poisson-variants-M2": dict(family="poisson", delta=1.5, gamma=0.7, lam=0.3, kappa=0.5, lam_trak=0.05,
                                n_proj=2, variants=True),
    "logistic-powerlaw": dict(family="logistic", delta=2.0, gamma=1.0, lam=0.1, kappa=0.1, lam_trak=0.0,
                              n_proj=1, covariance="power", cov_param=1.0, alignment=1.0, variants=True),
    "probit-base": dict(family="probit", delta=2.0, gamma=1.0, lam=0.1, kappa=0.5, lam_trak=0.0, n_proj=1),
    "probit-variants": dict(family="probit", delta=1.5, gamma=1.0, lam=0.3, kappa=0.5, lam_trak=0.05, n_proj=1,
                            variants=True),
    "gaussian-ar1": dict(family="gaussian", delta=1.0, gamma=1.0, sigma=0.5, lam=0.3, kappa=0.25, lam_trak=0.1,
                         n_proj=2, covariance="ar1", cov_param=0.7),
}


def simulate_summary(cfg, p, reps, n_test=20, seed=11):
    r = sims.simulate(**cfg, p=p, reps=reps, n_test=n_test, seed=seed)
    est = {e: {m: {**cell, "reps": reps} for m, cell in row.items()} for e, row in r["estimators"].items()}
    return {"config": r["config"], "estimators": est}


# The gradient similarity under a power-law spectrum (decay exponent >= 1) is outside its limit theory:
# P P^T weights the few strong directions, so per test point its scores neither concentrate nor
# decouple from g at p = 200-800 (docs/theory.md §12); it is compared everywhere else.
OUT_OF_SCOPE = {"logistic-powerlaw": ("tracin",), "logistic-power1.5-variants": ("tracin",)}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_theory_matches_simulation_at_p200(name):
    summary = simulate_summary(CONFIGS[name], p=200, reps=4)
    names = [e for e in ("loo",) + estimators_for(True) if e not in OUT_OF_SCOPE.get(name, ())]
    comps = compare([summary], estimators=names)
    assert len(comps) == 4 * len([e for e in estimators_for(bool(CONFIGS[name].get("variants"))) if e in names])
    bad = [c for c in comps if not c.ok]
    assert not bad, "\n" + format_comparisons(comps)


# The corrected variants under general covariance beyond the fast power-law case (make validate).
GENERAL_VARIANTS = {
    "poisson-ar1-variants-M2": dict(family="poisson", delta=1.5, gamma=0.7, lam=0.3, kappa=0.5, lam_trak=0.05,
                                    n_proj=2, covariance="ar1", cov_param=0.7, variants=True),
    "logistic-ar1-variants": dict(family="logistic", delta=2.0, gamma=2.0, lam=0.1, kappa=1.0, lam_trak=0.1,
                                  n_proj=1, covariance="ar1", cov_param=0.9, variants=True),
    "logistic-power1.5-variants": dict(family="logistic", delta=1.0, gamma=2.0, lam=0.3, kappa=0.25, lam_trak=0.1,
                                       n_proj=1, covariance="power", cov_param=1.5, variants=True),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(GENERAL_VARIANTS))
def test_variants_under_general_covariance_at_p400(name):
    names = [e for e in ("loo",) + estimators_for(True) if e not in OUT_OF_SCOPE.get(name, ())]
    comps = compare([simulate_summary(GENERAL_VARIANTS[name], p=400, reps=4)], estimators=names)
    print(f"\n=== {name} ===\n" + format_comparisons(comps))
    assert len(comps) == 4 * len([e for e in estimators_for(True) if e in names])
    assert all(c.ok for c in comps), "\n" + format_comparisons(comps)


def test_a_wrong_theory_is_rejected():
    """Negative control: the first-order guess tau(B^2) = s2(mu) (instead of the second-order
    (T7)) mispredicts TRAK by far more than the tolerance, so the comparison can fail."""
    from theory import traces

    cfg = CONFIGS["logistic-base"]
    summary = simulate_summary(cfg, p=200, reps=4)
    original = traces.kernel_traces

    def naive(**kw):
        out = original(**kw)
        out["tau_Bbar2"] = out["s2"]
        out["rho"] = out["tau_AB"] / (out["tau_A2"] * out["s2"]) ** 0.5
        return out

    from theory import prediction
    prediction.kernel_traces = naive
    try:
        wrong = lambda **model: prediction.predict(**model, nodes=41)  # noqa: E731  (fresh compile)
        comps = compare([summary], predictor=wrong, estimators=("trak",), metrics=("pearson",))
    finally:
        prediction.kernel_traces = original
    assert comps and not comps[0].ok
    assert comps[0].theory - comps[0].simulation > 0.1


@pytest.mark.slow
def test_theory_vs_simulation_convergence_in_p():
    """At p = 400 and 800: every comparison within tolerance, and the deterministic finite-size
    effects shrink as p doubles: the NS-LOO gap (relative error of NS) for every non-gaussian
    configuration, and the total deficit of IF's Spearman correlation (theory - simulation)."""
    tables = {}
    for p, reps in ((400, 6), (800, 4)):
        comps = []
        for name, cfg in CONFIGS.items():
            names = [e for e in ("loo",) + estimators_for(True) if e not in OUT_OF_SCOPE.get(name, ())]
            comps += compare([simulate_summary(cfg, p=p, reps=reps, n_test=30)], estimators=names)
        print(f"\n=== p = {p} ===\n" + format_comparisons(comps))
        tables[p] = comps
    for p, comps in tables.items():
        assert all(c.ok for c in comps), f"p = {p}: some comparisons fall outside tolerance"

    def rms(comps, metric):
        vals = [c.diff for c in comps if c.metric == metric and c.estimator in ("if", "trak")]
        return math.sqrt(np.mean(np.square(vals)))

    def ns_gap(comps):
        return {(c.config["family"], c.config["delta"], c.config["lam"]): c.simulation
                for c in comps if c.estimator == "ns" and c.metric == "rel_error"}

    for metric in ("pearson", "spearman", "rel_error"):
        print(f"RMS |sim - theory| {metric}: p=400 {rms(tables[400], metric):.4f}  p=800 {rms(tables[800], metric):.4f}")
    gaps400, gaps800 = ns_gap(tables[400]), ns_gap(tables[800])
    print("NS-LOO relative error p=400 -> 800:", {k: (round(gaps400[k], 4), round(gaps800[k], 4)) for k in gaps400})
    def if_spearman_deficit(comps):
        return sum(c.theory - c.simulation for c in comps if c.estimator == "if" and c.metric == "spearman")

    print(f"IF Spearman deficit (sum over configurations): p=400 {if_spearman_deficit(tables[400]):.5f}  "
          f"p=800 {if_spearman_deficit(tables[800]):.5f}")
    assert 0 < if_spearman_deficit(tables[800]) < if_spearman_deficit(tables[400])
    for key, gap in gaps400.items():
        if key[0] != "gaussian":          # NS = LOO exactly for the gaussian family
            assert gaps800[key] < gap


# The LDS (theory/lds.py) against `simulate(lds_subsets=J, lds_alpha=alpha)`: families, n/p and alpha,
# exact LOO's own ceiling included ("loo"); the theory is the expected Spearman over the same J.
LDS_CONFIGS = {
    "gaussian-a0.5": dict(family="gaussian", delta=2.0, gamma=1.0, sigma=0.5, lam=0.1, kappa=0.5, lam_trak=0.0,
                          lds_alpha=0.5),
    "logistic-a0.5-variants": dict(family="logistic", delta=2.0, gamma=1.0, lam=0.1, kappa=0.5, lam_trak=0.0,
                                   lds_alpha=0.5, variants=True),
    "logistic-d4-a0.3": dict(family="logistic", delta=4.0, gamma=2.0, lam=0.05, kappa=0.25, lam_trak=0.0,
                             lds_alpha=0.3),
    "poisson-a0.7-M2": dict(family="poisson", delta=1.5, gamma=0.7, lam=0.3, kappa=0.5, lam_trak=0.05, n_proj=2,
                            lds_alpha=0.7),
    "gaussian-n<p-a0.3": dict(family="gaussian", delta=0.5, gamma=1.0, sigma=1.0, lam=1.0, kappa=0.1, lam_trak=0.0,
                              lds_alpha=0.3),
}


def lds_comparisons(cfg, p, reps, n_subsets, n_test=20, seed=5):
    r = sims.simulate(**cfg, p=p, reps=reps, n_test=n_test, seed=seed, lds_subsets=n_subsets)
    est = {e: {m: {**cell, "reps": reps} for m, cell in row.items()} for e, row in r["estimators"].items()}
    return compare([{"config": r["config"], "estimators": est}], metrics=("lds",))


@pytest.mark.slow
def test_lds_theory_matches_simulation_at_p100():
    comps = lds_comparisons(LDS_CONFIGS["gaussian-a0.5"], p=100, reps=2, n_subsets=40)
    assert [c.estimator for c in comps] == ["loo", *estimators_for(False)]
    assert all(c.ok for c in comps), "\n" + format_comparisons(comps)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LDS_CONFIGS))
def test_lds_theory_matches_simulation_at_p400(name):
    """Tolerance 3 s.e. + 0.02 at p = 400 (issue 17)."""
    comps = lds_comparisons(LDS_CONFIGS[name], p=400, reps=2, n_subsets=60)
    print(f"\n=== {name} ===\n" + format_comparisons(comps))
    assert all(c.ok for c in comps), "\n" + format_comparisons(comps)


@pytest.mark.parametrize("family", ["gaussian", "logistic", "poisson"])
def test_gradient_similarity_theory_matches_simulation_at_p300(family):
    """The gradient similarity (TRAK's lamT -> infinity limit; theory.estimators): Spearman and
    Pearson within 3 s.e. + 0.02 of exact-LOO simulation at p = 300."""
    cfg = dict(family=family, delta=2.0, gamma=1.0, sigma=0.5, lam=0.1, kappa=0.25, lam_trak=0.0, n_proj=2)
    comps = compare([simulate_summary(cfg, p=300, reps=2, n_test=20, seed=5)], estimators=("tracin",),
                    metrics=("pearson", "spearman"), n_se=3.0,
                    allowance={m: 0.02 * math.sqrt(300 / 400) for m in ("pearson", "spearman")})   # 0.02 at p = 300
    assert len(comps) == 2
    assert all(c.ok for c in comps), "\n" + format_comparisons(comps)
