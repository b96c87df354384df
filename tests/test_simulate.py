"""`sims.simulate`: layout, determinism, replicate prefix property, validation."""

import numpy as np
import pytest

import sims
from theory.errors import InvalidParameterError
from theory.families import get_family

LOGISTIC = get_family("logistic")     # the engine's internals take a Family

SMALL = dict(family="logistic", p=40, delta=2.0, kappa=0.5, lam=0.2, n_test=4, reps=2, seed=7)


@pytest.fixture(scope="module")
def small_result():
    return sims.simulate(**SMALL)


def test_layout_matches_predict_layout(small_result):
    from theory import predict
    from theory.estimators import estimator_group

    assert set(small_result["estimators"]) == set(estimator_group("core"))
    assert set(small_result["estimators"]) == set(predict(**{k: v for k, v in small_result["config"].items()
                                                             if k in ("family", "delta", "kappa", "lam")})["estimators"])
    for row in small_result["estimators"].values():
        assert set(row) == {"pearson", "spearman", "rel_error", "scale", "top_overlap"}
        for cell in row.values():
            assert np.isfinite(cell["mean"]) and cell["se"] >= 0
    assert small_result["config"]["n"] == 80 and small_result["config"]["k"] == 20


def test_ns_is_closer_to_loo_than_if(small_result):
    est = small_result["estimators"]
    assert est["ns"]["rel_error"]["mean"] < est["if"]["rel_error"]["mean"]
    assert est["ns"]["pearson"]["mean"] > 0.99


def test_same_seed_same_numbers(small_result):
    again = sims.simulate(**SMALL)
    assert again["estimators"] == small_result["estimators"]


def test_replicates_are_a_prefix_of_longer_runs():
    sp2 = sims.validate_sim(**{**SMALL, "reps": 2})
    a = sims.run_replicate(sp2, 1)
    b = sims.run_replicate(sims.validate_sim(**{**SMALL, "reps": 5}), 1)
    for name in ("if", "ns", "trak"):
        np.testing.assert_array_equal(a.metrics[name]["pearson"], b.metrics[name]["pearson"])


def test_different_seeds_differ(small_result):
    other = sims.simulate(**{**SMALL, "seed": 8})
    assert other["estimators"]["trak"]["pearson"] != small_result["estimators"]["trak"]["pearson"]


@pytest.mark.parametrize("bad, match", [
    (dict(p=0), "p must be >= 2"),
    (dict(p=3.5), "p must be an integer"),
    (dict(kappa=1.5), "kappa must be <= 1"),
    (dict(kappa=0.0), "kappa must be > 0"),
    (dict(lam=-1.0), "lam must be >= 0"),
    (dict(lam=float("nan")), "lam must be finite"),
    (dict(family="cauchy"), "family must be one of"),
    (dict(projection="sparse"), "projection must be one of"),
    (dict(n_proj=0), "n_proj must be >= 1"),
    (dict(delta=-2.0), "delta must be > 0"),
    (dict(delta=0.01, lam_trak=0.1), "n = round"),
    (dict(kappa=1.0, delta=1.0, lam_trak=0.0), "lam_trak = 0 needs k < n"),
    (dict(projection="identity", kappa=0.5), "kappa must be 1"),
    (dict(lam=0.0, delta=0.5, lam_trak=0.1), "lam = 0 needs n > p"),
    (dict(n_test=0), "n_test must be >= 1"),
    (dict(seed=-1), "seed must be >= 0"),
    (dict(reps="2"), "reps must be an integer"),
    (dict(top_m=10_000), "top_m must be <= 80"),
])
def test_invalid_input_raises_named_error(bad, match):
    with pytest.raises(InvalidParameterError, match=match):
        sims.simulate(**{**SMALL, **bad})


def test_lds_is_reported_for_every_estimator_and_loo():
    r = sims.simulate(**{**SMALL, "reps": 1}, lds_subsets=12, variants=True)
    from theory.estimators import estimators_for

    assert set(r["estimators"]) == {"loo", *estimators_for(True)}
    for row in r["estimators"].values():
        assert -1 <= row["lds"]["mean"] <= 1
    assert list(r["estimators"]["if"])[:5] == ["pearson", "spearman", "rel_error", "scale", "top_overlap"]


def test_lds_refits_in_padded_chunks_equal_one_batch(monkeypatch):
    """More subsets than SUBSET_CHUNK run in equal chunks (the last padded): the same outputs, bit
    for bit, as one batch of all of them."""
    import jax

    from sims.engine import lds as L
    from sims.engine.data import make_data
    from sims.engine.fit import newton_fit

    d = make_data(jax.random.PRNGKey(0), family="logistic", n=40, p=20, n_test=2, gamma=1.0, sigma=0.0)
    fit = newton_fit(d.X, d.y, 0.2, family="logistic")
    J = L.SUBSET_CHUNK + 3
    masks, chunked = L.subset_outputs(jax.random.PRNGKey(1), d.X, d.y, d.X0, 0.2, fit.beta, family=LOGISTIC,
                                      n_subsets=J)
    monkeypatch.setattr(L, "SUBSET_CHUNK", J)
    _, whole = L.subset_outputs(jax.random.PRNGKey(1), d.X, d.y, d.X0, 0.2, fit.beta, family=LOGISTIC,
                                n_subsets=J)
    assert chunked.shape == (2, J) and np.array_equal(chunked, whole)


def test_lds_equals_a_direct_computation():
    import jax
    from scipy import stats

    from sims.engine.data import make_data
    from sims.engine.fit import newton_fit
    from sims.engine.lds import lds, subset_outputs

    d = make_data(jax.random.PRNGKey(0), family="logistic", n=40, p=20, n_test=2, gamma=1.0, sigma=0.0)
    fit = newton_fit(d.X, d.y, 0.2, family="logistic")
    masks, outputs = subset_outputs(jax.random.PRNGKey(1), d.X, d.y, d.X0, 0.2, fit.beta,
                                    family=LOGISTIC, n_subsets=10)
    np.testing.assert_array_equal(np.asarray(masks).sum(1), 20)
    for j in (0, 7):
        keep = np.asarray(masks[j]) > 0
        refit = newton_fit(d.X[keep], d.y[keep], 0.2, family="logistic")
        np.testing.assert_allclose(outputs[:, j], np.asarray(d.X0 @ refit.beta), atol=1e-8)
    tau = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (2, 40)))
    got = np.asarray(lds(tau, masks, outputs))
    for t in range(2):
        want = stats.spearmanr(tau[t] @ np.asarray(masks).T, outputs[t])[0]
        assert got[t] == pytest.approx(want, abs=1e-12)


def test_lds_alpha_defaults_to_one_half_and_sets_the_subset_fraction():
    base = dict(**{**SMALL, "reps": 1}, lds_subsets=8)
    default, half, third = (sims.simulate(**base, **kw) for kw in ({}, {"lds_alpha": 0.5}, {"lds_alpha": 0.3}))
    assert default["estimators"] == half["estimators"]              # bit-identical at 1/2
    assert half["config"]["lds_alpha"] == 0.5 and third["config"]["lds_alpha"] == 0.3
    assert third["estimators"]["loo"]["lds"] != half["estimators"]["loo"]["lds"]
    assert third["estimators"]["if"]["pearson"] == half["estimators"]["if"]["pearson"]   # only the LDS changes
    assert "lds_alpha" not in sims.simulate(**{**SMALL, "reps": 1})["config"]          # (no LDS, no key)
    for bad in (0, 1, 1.5, -0.1, "0.5"):
        with pytest.raises(InvalidParameterError):
            sims.simulate(**base, lds_alpha=bad)
