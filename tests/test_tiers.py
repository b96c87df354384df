"""sims.engine.tiers: the compilation tier follows the shapes; both tiers give the same numbers
to rounding; inside jit the kernel is inlined."""

import jax
import jax.numpy as jnp
import numpy as np

from sims.engine import tiers
from sims.engine.fit import newton_fit


def test_tier_follows_the_largest_argument(monkeypatch):
    f = tiers.tiered_jit(lambda x, y: x.sum() + y.sum())
    monkeypatch.setattr(tiers, "SMALL_ELEMENTS", 10)
    assert float(f(jnp.ones(10), jnp.ones(2))) == 12.0           # 10 entries: the fast-compile tier
    assert (f.fast_compile_tier()._cache_size(), f.default_tier._cache_size()) == (1, 0)
    assert float(f(jnp.ones(11), jnp.ones(2))) == 13.0           # 11: the default tier
    assert (f.fast_compile_tier()._cache_size(), f.default_tier._cache_size()) == (1, 1)


def test_both_tiers_fit_the_same_model(monkeypatch):
    key = jax.random.PRNGKey(0)
    X = jax.random.normal(key, (60, 20)) / np.sqrt(20)
    y = (jax.random.uniform(jax.random.PRNGKey(1), (60,)) < 0.5).astype(jnp.float64)
    fast_compile = newton_fit(X, y, 0.1, family="logistic")
    monkeypatch.setattr(tiers, "SMALL_ELEMENTS", 0)
    fast_run = newton_fit(X, y, 0.1, family="logistic")
    np.testing.assert_allclose(fast_compile.beta, fast_run.beta, rtol=1e-12, atol=1e-15)
    assert int(fast_compile.status) == int(fast_run.status) == 0


def test_inside_jit_the_kernel_is_inlined():
    f = tiers.tiered_jit(lambda x: 2.0 * x)
    np.testing.assert_array_equal(jax.jit(lambda x: f(x) + 1.0)(jnp.arange(3.0)), [1.0, 3.0, 5.0])
    np.testing.assert_array_equal(jax.vmap(f)(jnp.ones((2, 3))), 2.0 * np.ones((2, 3)))


def test_fast_compile_options_drop_an_option_this_jaxlib_lacks(monkeypatch):
    """The fast tier asks for XLA:CPU's elemental fusion emitters only where jaxlib knows the
    option; with an unknown one it keeps the rest (no error at the first compilation)."""
    tiers.fast_compile_options.cache_clear()
    try:
        assert tiers.fast_compile_options().items() >= tiers.FAST_COMPILE.items()
        monkeypatch.setattr(tiers, "ELEMENTAL_FUSIONS", {"xla_no_such_option_anywhere": False})
        tiers.fast_compile_options.cache_clear()
        assert tiers.fast_compile_options() == tiers.FAST_COMPILE
    finally:
        tiers.fast_compile_options.cache_clear()
