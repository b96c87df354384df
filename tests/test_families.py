"""GLM families: derivatives, proximal maps and samplers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory.errors import InvalidParameterError
from theory.families import FAMILIES, Family, get_family

NAMES = list(FAMILIES)


def _responses(name, n, rng):
    if name == "gaussian":
        return rng.normal(size=n)
    if get_family(name).support == "binary":
        return rng.integers(0, 2, size=n).astype(float)
    return rng.poisson(2.0, size=n).astype(float)


@pytest.mark.parametrize("name", NAMES)
def test_derivatives_match_autodiff(name):
    fam = get_family(name)
    rng = np.random.default_rng(0)
    y = jnp.asarray(_responses(name, 50, rng))
    eta = jnp.asarray(rng.normal(size=50))
    g = jax.vmap(jax.grad(fam.loss, argnums=1))(y, eta)
    w = jax.vmap(jax.grad(fam.grad, argnums=1))(y, eta)
    np.testing.assert_allclose(fam.grad(y, eta), g, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fam.hess(y, eta), w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_prox_solves_its_equation_and_has_implicit_derivative(name):
    fam = get_family(name)
    rng = np.random.default_rng(1)
    y = jnp.asarray(_responses(name, 200, rng))
    z = jnp.asarray(rng.normal(scale=5.0, size=200))
    c = jnp.asarray(rng.uniform(0.01, 20.0, size=200))
    eta = fam.prox(y, z, c)
    np.testing.assert_allclose(eta + c * fam.grad(y, eta), z, rtol=1e-12, atol=1e-11)
    # derivative in z by finite differences against the custom JVP
    h = 1e-6
    fd = (fam.prox(y, z + h, c) - fam.prox(y, z - h, c)) / (2 * h)
    jvp = jax.jvp(lambda zz: fam.prox(y, zz, c), (z,), (jnp.ones_like(z),))[1]
    np.testing.assert_allclose(jvp, fd, rtol=1e-6, atol=1e-8)
    fd_c = (fam.prox(y, z, c + h) - fam.prox(y, z, c - h)) / (2 * h)
    jvp_c = jax.jvp(lambda cc: fam.prox(y, z, cc), (c,), (jnp.ones_like(c),))[1]
    np.testing.assert_allclose(jvp_c, fd_c, rtol=1e-5, atol=1e-7)


def test_poisson_prox_is_overflow_free():
    fam = get_family("poisson")
    eta = fam.prox(jnp.asarray([0.0, 1e6]), jnp.asarray([800.0, 50.0]), jnp.asarray([1e3, 1e-3]))
    assert bool(jnp.all(jnp.isfinite(eta)))
    np.testing.assert_allclose(eta + jnp.asarray([1e3, 1e-3]) * fam.grad(jnp.asarray([0.0, 1e6]), eta),
                               [800.0, 50.0], rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_sampler_matches_response_law(name):
    fam = get_family(name)
    s = jnp.full(200_000, 0.7)
    y = fam.sample(jax.random.PRNGKey(3), s, 0.5)
    values, probs = fam.response_law(jnp.asarray(0.7), 0.5, 40)
    mean = float(jnp.sum(values * probs))
    var = float(jnp.sum(values**2 * probs)) - mean**2
    assert abs(float(jnp.sum(probs)) - 1.0) < 1e-10
    assert abs(float(y.mean()) - mean) < 5 * np.sqrt(var / y.size)
    assert y.dtype == jnp.float64


def test_unknown_family_is_a_named_error():
    with pytest.raises(InvalidParameterError, match="family must be one of"):
        get_family("cauchy")


@pytest.mark.parametrize("name", NAMES)
def test_label_support(name):
    fam = get_family(name)
    rng = np.random.default_rng(4)
    assert fam.label_problem(_responses(name, 30, rng)) is None
    assert fam.label_problem(np.array([0.0, np.nan])) == "must be finite"
    if fam.support != "real":
        assert fam.label_problem(np.array([0.0, 0.5])) is not None
        assert fam.label_problem(np.array([0.0, -1.0])) is not None


def test_probit_against_closed_forms():
    """probit: l' = -y m(eta) + (1 - y) m(-eta) with the inverse Mills ratio m = phi/Phi (scipy),
    prox derivative in y by finite differences (the family is not canonical), and the Candès–Sur
    boundary at gamma = 0 (labels independent of the features: delta_sep = 2, as for logistic)."""
    from scipy.stats import norm

    fam = get_family("probit")
    eta = np.linspace(-8.0, 8.0, 33)
    mills = lambda t: norm.pdf(t) / norm.cdf(t)  # noqa: E731
    np.testing.assert_allclose(fam.grad(jnp.ones_like(eta), eta), -mills(eta), rtol=1e-10)
    np.testing.assert_allclose(fam.grad(jnp.zeros_like(eta), eta), mills(-eta), rtol=1e-10)
    y, z, c = jnp.asarray(0.3), jnp.asarray(0.7), jnp.asarray(2.0)
    h = 1e-6
    fd = (fam.prox(y + h, z, c) - fam.prox(y - h, z, c)) / (2 * h)
    jvp = jax.jvp(lambda yy: fam.prox(yy, z, c), (y,), (jnp.ones_like(y),))[1]
    np.testing.assert_allclose(jvp, fd, rtol=1e-6)
    assert abs(fam.separability(0.0) - 2.0) < 1e-6
    assert fam.separability(1.0) > get_family("logistic").separability(1.0)   # Phi is steeper than sigmoid


# ------------------------------------------- a Family after the entry point (issue 28, item 3)
def test_a_family_is_hashable_equal_and_resolved_to_itself():
    """Entry points resolve a name once and pass the Family on: as a static argument of jit it must
    hash and compare equal for the same family, and `get_family` leaves a Family as it is."""
    import copy

    fam = get_family("logistic")
    twin = copy.copy(fam)                         # equal, not the same object
    assert twin is not fam and twin == fam and hash(twin) == hash(fam)
    assert get_family(fam) is fam and get_family("Logistic") is fam
    assert fam != get_family("probit") and len({get_family(n) for n in NAMES}) == len(NAMES)
    assert repr(fam) == "Family('logistic')"     # what keys compiled programs on disk: the name


def test_a_jit_compiled_fit_takes_a_family_and_reuses_its_program():
    import copy

    from sims.engine.data import make_data
    from sims.engine.fit import newton_fit

    fam = get_family("logistic")
    d = make_data(jax.random.PRNGKey(3), family=fam, n=40, p=20, n_test=2, gamma=1.0, sigma=0.0)
    by_name = make_data(jax.random.PRNGKey(3), family="logistic", n=40, p=20, n_test=2, gamma=1.0, sigma=0.0)
    np.testing.assert_array_equal(d.y, by_name.y)
    fit = newton_fit(d.X, d.y, 0.2, family=fam)
    np.testing.assert_array_equal(fit.beta, newton_fit(d.X, d.y, 0.2, family="logistic").beta)
    program = newton_fit.fast_compile_tier()      # the tier of this small problem
    compiled = program._cache_size()
    again = newton_fit(d.X, d.y, 0.2, family=copy.copy(fam))     # an equal Family
    assert program._cache_size() == compiled      # no new compilation
    np.testing.assert_array_equal(again.beta, fit.beta)


def test_the_theory_passes_a_family_inside_and_records_the_name(monkeypatch):
    import theory
    from theory import fixed_point, prediction

    seen = []

    def spy(family, *args, **kwargs):
        seen.append(family)
        return fixed_point.solve_fixed_point(family, *args, **kwargs)

    monkeypatch.setattr(prediction, "solve_fixed_point", spy)
    by_name = theory.predict(family="poisson", delta=2.0, kappa=0.5, lam=0.1, gamma=0.5)
    by_family = theory.predict(family=get_family("poisson"), delta=2.0, kappa=0.5, lam=0.1, gamma=0.5)
    assert seen == [get_family("poisson")] * 2 and all(isinstance(f, Family) for f in seen)
    assert by_name == by_family and by_family["config"]["family"] == "poisson"


def test_the_public_api_refuses_an_unknown_family_in_one_sentence():
    import sims
    import theory
    from theory.params import validate_model

    sentence = f"family must be one of {', '.join(FAMILIES)}, got 'cauchy'."
    for call in (lambda: theory.predict(family="cauchy"), lambda: sims.simulate(family="cauchy", p=20),
                 lambda: theory.predict_curve("kappa", [0.5], family="cauchy"),
                 lambda: validate_model(family="cauchy")):
        with pytest.raises(InvalidParameterError) as err:
            call()
        assert str(err.value) == sentence
