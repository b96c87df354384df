"""Metrics against scipy / numpy on random inputs with ties."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from sims.engine.metrics import average_ranks, mean_and_se, row_metrics


@pytest.fixture
def tied_rows():
    rng = np.random.default_rng(0)
    est = rng.integers(-5, 6, size=(6, 40)).astype(float)   # many ties
    loo = est + rng.integers(-3, 4, size=(6, 40))
    return est, loo


def test_average_ranks_equal_scipy(tied_rows):
    est, _ = tied_rows
    np.testing.assert_allclose(average_ranks(jnp.asarray(est)), stats.rankdata(est, axis=-1))


def test_metrics_equal_reference_implementations(tied_rows):
    est, loo = tied_rows
    got = {k: np.asarray(v) for k, v in row_metrics(jnp.asarray(est), jnp.asarray(loo), top_m=5).items()}
    for t in range(est.shape[0]):
        e, l = est[t], loo[t]
        assert got["pearson"][t] == pytest.approx(stats.pearsonr(e, l)[0], abs=1e-12)
        assert got["spearman"][t] == pytest.approx(stats.spearmanr(e, l)[0], abs=1e-12)
        assert got["rel_error"][t] == pytest.approx(np.linalg.norm(e - l) / np.linalg.norm(l), rel=1e-12)
        assert got["scale"][t] == pytest.approx(np.linalg.lstsq(e[:, None], l, rcond=None)[0][0], rel=1e-10)


def test_top_overlap_on_continuous_values():
    rng = np.random.default_rng(1)
    est = rng.normal(size=(4, 50))
    loo = est + 0.5 * rng.normal(size=(4, 50))
    got = np.asarray(row_metrics(jnp.asarray(est), jnp.asarray(loo), top_m=7)["top_overlap"])
    for t in range(4):
        top_e = set(np.argsort(-np.abs(est[t]))[:7])
        top_l = set(np.argsort(-np.abs(loo[t]))[:7])
        assert got[t] == pytest.approx(len(top_e & top_l) / 7)


def test_metrics_of_identical_inputs_are_perfect():
    rng = np.random.default_rng(2)
    e = jnp.asarray(rng.normal(size=(3, 30)))
    m = row_metrics(e, e, top_m=3)
    np.testing.assert_allclose(m["pearson"], 1.0)
    np.testing.assert_allclose(m["spearman"], 1.0)
    np.testing.assert_allclose(m["rel_error"], 0.0)
    np.testing.assert_allclose(m["scale"], 1.0)
    np.testing.assert_allclose(m["top_overlap"], 1.0)


def test_standard_error_uses_replicate_means_when_they_vary_more():
    rng = np.random.default_rng(3)
    offsets = np.array([0.0, 1.0, 2.0, 3.0])[:, None]      # strong between-replicate effect
    values = offsets + 0.01 * rng.normal(size=(4, 50))
    mean, se = mean_and_se(values)
    assert mean == pytest.approx(values.mean())
    assert se == pytest.approx(values.mean(axis=1).std(ddof=1) / 2, rel=1e-12)
    one_rep = values[:1]
    assert mean_and_se(one_rep)[1] == pytest.approx(one_rep.std(ddof=1) / np.sqrt(50))
