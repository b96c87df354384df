"""Reproducibility guarantees (docs/reliability.md).

- Same seed and configuration: bit-identical results, run after run (and in a fresh process).
- Different exact-LOO chunk sizes or device counts: equal to 1e-12 relative (matrix products are
  blocked differently, which changes rounding only), and to the LOO tolerance with exact LOO's
  default float32 iterations; tests/test_devices.py covers device counts.
"""

import numpy as np

import sims

CFG = dict(family="poisson", p=24, delta=2.0, kappa=0.5, lam=0.1, gamma=0.5, n_test=4, reps=2, seed=5)


def test_same_seed_bit_identical():
    a, b = sims.simulate(**CFG), sims.simulate(**CFG)
    assert a["estimators"] == b["estimators"]


def test_chunk_size_changes_only_rounding():
    import jax

    from sims.engine.data import make_data
    from sims.engine.fit import hessian_inverse, newton_fit
    from sims.engine.loo import exact_loo
    from sims.engine.metrics import row_metrics

    d = make_data(jax.random.PRNGKey(5), family="poisson", n=48, p=24, n_test=4, gamma=0.5, sigma=0.0)
    fit = newton_fit(d.X, d.y, 0.1, family="poisson")
    A = hessian_inverse(d.X, fit.w, 0.1)
    small = exact_loo("poisson", d.X, d.y, d.X0, fit, A, 0.1, chunk_size=5, f32_steps=0).values
    large = exact_loo("poisson", d.X, d.y, d.X0, fit, A, 0.1, chunk_size=48, f32_steps=0).values
    np.testing.assert_allclose(small, large, rtol=1e-12, atol=1e-15)
    # the default float32 iterations round with the blocking more: equal to the LOO tolerance (1e-10)
    mixed = [exact_loo("poisson", d.X, d.y, d.X0, fit, A, 0.1, chunk_size=c).values for c in (5, 48)]
    np.testing.assert_allclose(mixed[0], mixed[1], rtol=0, atol=1e-10 * np.abs(large).max())
    np.testing.assert_allclose(mixed[0], large, rtol=0, atol=1e-10 * np.abs(large).max())
    a = row_metrics(jax.numpy.asarray(small), jax.numpy.asarray(large), top_m=3)
    np.testing.assert_allclose(a["pearson"], 1.0, rtol=1e-12)


def test_theory_is_deterministic():
    from theory import predict

    assert predict(family="logistic", delta=1.7, kappa=0.3) == predict(family="logistic", delta=1.7, kappa=0.3)
