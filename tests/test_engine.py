"""Fit, exact LOO and estimators against brute force and exact identities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sims.engine.data import make_data
from sims.engine.estimators import if_ns_influence, projection_matrix, trak_influence
from sims.engine.fit import check_fit, hessian_inverse, newton_fit
from sims.engine.loo import exact_loo
from theory.errors import EstimatorDoesNotExistError, NotConvergedError

FAMILIES = ["gaussian", "logistic", "poisson"]


def _setup(family, n=48, p=24, T=3, lam=0.3, gamma=1.0, seed=0):
    d = make_data(jax.random.PRNGKey(seed), family=family, n=n, p=p, n_test=T, gamma=gamma, sigma=0.5)
    fit = check_fit(newton_fit(d.X, d.y, lam, family=family), d.X, d.y, lam, family)
    A = hessian_inverse(d.X, fit.w, lam)
    return d, fit, A


@pytest.mark.parametrize("family", FAMILIES)
def test_fit_reaches_tolerance_and_stationarity(family):
    d, fit, _ = _setup(family)
    assert float(fit.rel_grad) <= 1e-10
    grad = d.X.T @ fit.g + 0.3 * fit.beta
    assert float(jnp.linalg.norm(grad)) < 1e-9


def test_gaussian_fit_is_ridge_closed_form():
    d, fit, _ = _setup("gaussian")
    X, y = np.asarray(d.X), np.asarray(d.y)
    beta = np.linalg.solve(X.T @ X + 0.3 * np.eye(X.shape[1]), X.T @ y)
    np.testing.assert_allclose(fit.beta, beta, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("track", [None, True])
@pytest.mark.parametrize("family", FAMILIES)
def test_exact_loo_equals_refits_from_scratch(family, track):
    """Both forms of the chord iteration (gradient from the identity, or coefficients tracked)."""
    lam = 0.3
    d, fit, A = _setup(family, lam=lam)
    loo = exact_loo(family, d.X, d.y, d.X0, fit, A, lam, chunk_size=7, track=track)   # 7 lanes
    assert loo.tracked == bool(track)
    n = d.X.shape[0]
    brute = np.empty((d.X0.shape[0], n))
    for i in range(n):
        keep = np.arange(n) != i
        refit = newton_fit(d.X[keep], d.y[keep], lam, family=family, tol=1e-13, max_iter=200)
        brute[:, i] = np.asarray(d.X0 @ (fit.beta - refit.beta))
    np.testing.assert_allclose(loo.values, brute, rtol=0, atol=1e-8)
    assert np.abs(brute).max() > 1e-2   # the comparison is not between zeros


def test_loo_is_independent_of_chunking():
    d, fit, A = _setup("logistic")
    a = exact_loo("logistic", d.X, d.y, d.X0, fit, A, 0.3, chunk_size=5).values
    b = exact_loo("logistic", d.X, d.y, d.X0, fit, A, 0.3, chunk_size=48).values
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("family", ["logistic", "poisson"])
def test_mixed_precision_loo_agrees_with_float64_and_is_repeatable(family):
    """The float32 warm start and bounded float32 checks (the default) end every point at the
    float64 tolerance: the values agree with the all-float64 iteration to well within it. Three
    lanes over several warm batches: the lanes take points from two batches in one step; the same
    call twice gives the same bits (the host's lane arrays are never changed under JAX)."""
    d, fit, A = _setup(family, n=80, p=40)
    ref = exact_loo(family, d.X, d.y, d.X0, fit, A, 0.3, f32_steps=0, chunk_size=3)
    a = exact_loo(family, d.X, d.y, d.X0, fit, A, 0.3, chunk_size=3)
    b = exact_loo(family, d.X, d.y, d.X0, fit, A, 0.3, chunk_size=3)
    assert (a.n_iter >= 5).all() and not np.array_equal(a.values, ref.values)   # the warm start (4 steps) ran
    assert (a.rel_resid <= 1e-10).all()
    np.testing.assert_allclose(a.values, ref.values, rtol=0, atol=1e-10 * np.abs(ref.values).max())
    np.testing.assert_array_equal(a.values, b.values)


def test_float32_product_error_bound_holds():
    """The bound of sims.engine.loo._float32_error on ||fl32(X^T d) - X^T d||, including steps with
    entries spread over 80 binades (some below float32's normal range after scaling)."""
    from sims.engine.loo import _float32_error, _product32, float32_error_constants

    rng = np.random.default_rng(0)
    n, p = 300, 50
    X = rng.standard_normal((n, p)) * np.exp(rng.uniform(-3, 3, (n, p)))
    d = rng.standard_normal((4, n)) * 2.0 ** rng.uniform(-200, -120, (4, n))
    scale = 2.0 ** np.ceil(np.log2(np.abs(d).max(axis=1)))
    c32 = float32_error_constants(n, np.linalg.norm(X))
    r = np.asarray(_product32(jnp.asarray(d / scale[:, None]), jnp.asarray(X, jnp.float32))) * scale[:, None]
    err = np.linalg.norm(r - d @ X, axis=1)
    bound = np.asarray(_float32_error(jnp.asarray(d), jnp.asarray(scale), c32, (n, p)))
    assert (err <= bound).all() and (err > 0).all()


def test_newton_step_is_exact_loo_for_gaussian():
    d, fit, A = _setup("gaussian", n=60, p=40)
    loo = exact_loo("gaussian", d.X, d.y, d.X0, fit, A, 0.3)
    _, NS, _ = if_ns_influence(d.X, d.X0, fit.g, fit.w, A, d.X @ A)
    np.testing.assert_allclose(NS, loo.values, rtol=0, atol=1e-10)
    assert loo.n_iter.max() == 1


def test_trak_without_projection_and_same_ridge_equals_if_for_gaussian():
    lam = 0.3
    d, fit, A = _setup("gaussian", lam=lam)
    IF, _, _ = if_ns_influence(d.X, d.X0, fit.g, fit.w, A, d.X @ A)
    TRAK = trak_influence(jax.random.PRNGKey(0), d.X, d.X0, fit.g, lam, k=24, n_proj=1, projection="identity")
    np.testing.assert_allclose(TRAK, IF, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("projection", ["gaussian", "rademacher"])
@pytest.mark.parametrize("lam_trak", [0.0, 0.05])
def test_trak_equals_direct_numpy_formula(projection, lam_trak):
    """phi_0^T (Phi^T Phi + lamT I)^{-1} phi_i Q_ii with Q_ii = -g_i, averaged over M projections."""
    d, fit, _ = _setup("logistic")
    key, k, M = jax.random.PRNGKey(5), 10, 3
    got = trak_influence(key, d.X, d.X0, fit.g, lam_trak, k=k, n_proj=M, projection=projection)
    X, X0, g = np.asarray(d.X), np.asarray(d.X0), np.asarray(fit.g)
    want = np.zeros_like(np.asarray(got))
    for m in range(M):
        P = np.asarray(projection_matrix(jax.random.fold_in(key, m), X.shape[1], k, projection))
        Phi, Phi0 = X @ P, X0 @ P
        want += Phi0 @ np.linalg.inv(Phi.T @ Phi + lam_trak * np.eye(k)) @ Phi.T * (-g)
    np.testing.assert_allclose(got, want / M, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 7), (40, 30), (150, 120), (2, 9000)])
@pytest.mark.parametrize("kind", ["gaussian", "rademacher"])
def test_bucketed_draws_are_the_draws_in_shape(shape, kind):
    """A draw in a bucketed size (one compiled sampler per bucket) starts with the numbers that
    jax.random draws in the requested shape, bit for bit (sizes below, at and above MIN_BUCKET)."""
    from sims.engine.data import MIN_BUCKET, flat_draw, take
    from theory.shapes import bucket

    size = shape[0] * shape[1]
    drawn = bucket(size, minimum=MIN_BUCKET)
    assert drawn >= max(size, MIN_BUCKET) and drawn <= max(MIN_BUCKET, 1.25 * size)
    key = jax.random.PRNGKey(3)
    want = getattr(jax.random, "normal" if kind == "gaussian" else "rademacher")(key, shape, dtype=jnp.float64)
    got = jax.jit(take, static_argnums=1)(flat_draw(key, size, kind), shape)
    assert np.array_equal(np.asarray(got), np.asarray(want))


def test_projection_entries_have_the_documented_law():
    P = np.asarray(projection_matrix(jax.random.PRNGKey(0), 400, 100, "gaussian"))
    assert abs(P.var() * 100 - 1.0) < 0.02 and abs(P.mean()) < 0.01
    R = np.asarray(projection_matrix(jax.random.PRNGKey(0), 400, 100, "rademacher"))
    np.testing.assert_allclose(np.abs(R), 0.1)


def test_if_and_ns_match_their_definitions():
    d, fit, A = _setup("poisson")
    X, X0, g, w = (np.asarray(a) for a in (d.X, d.X0, fit.g, fit.w))
    H = X.T @ (w[:, None] * X) + 0.3 * np.eye(X.shape[1])
    Ainv = np.linalg.inv(H)
    IF, NS, h = if_ns_influence(d.X, d.X0, fit.g, fit.w, A, d.X @ A)
    np.testing.assert_allclose(IF, -(X0 @ Ainv @ X.T) * g, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(h, np.einsum("ij,jk,ik->i", X, Ainv, X), rtol=1e-10)
    np.testing.assert_allclose(NS, np.asarray(IF) / (1 - w * np.asarray(h)), rtol=1e-10)


def test_separable_logistic_without_ridge_has_no_estimator():
    d = make_data(jax.random.PRNGKey(0), family="logistic", n=30, p=20, n_test=1, gamma=5.0, sigma=0.0)
    fit = newton_fit(d.X, d.y, 0.0, family="logistic")
    with pytest.raises(EstimatorDoesNotExistError, match="separable"):
        check_fit(fit, d.X, d.y, 0.0, "logistic")


def test_non_convergence_is_a_named_error():
    d = make_data(jax.random.PRNGKey(0), family="poisson", n=40, p=20, n_test=1, gamma=1.0, sigma=0.0)
    fit = newton_fit(d.X, d.y, 0.1, family="poisson", max_iter=1)
    with pytest.raises(NotConvergedError, match="iteration cap"):
        check_fit(fit, d.X, d.y, 0.1, "poisson")


def test_hard_points_fall_back_to_newton_and_still_equal_refits():
    """Small lam on the separable side: some chord iterations stall; Newton refits take over."""
    lam = 0.003
    d = make_data(jax.random.PRNGKey(2), family="logistic", n=60, p=40, n_test=3, gamma=2.0, sigma=0.0)
    fit = check_fit(newton_fit(d.X, d.y, lam, family="logistic"), d.X, d.y, lam, "logistic")
    A = hessian_inverse(d.X, fit.w, lam)
    loo = exact_loo("logistic", d.X, d.y, d.X0, fit, A, lam, chord_iters=4)
    assert (loo.n_iter > 4).any()          # the fallback ran for some points
    for i in np.flatnonzero(loo.n_iter > 4)[:5]:
        keep = np.arange(60) != i
        refit = newton_fit(d.X[keep], d.y[keep], lam, family="logistic", tol=1e-13, max_iter=300)
        np.testing.assert_allclose(loo.values[:, i], np.asarray(d.X0 @ (fit.beta - refit.beta)), atol=1e-8)


def test_mixed_precision_near_separability_equals_float64():
    """Slowly converging points (small lam near separability) take large float64-phase steps, so
    the float32 check's error bound would pass the threshold: those batches fall back to float64
    products; every point still ends at the tolerance, with the all-float64 values."""
    lam = 0.003
    d = make_data(jax.random.PRNGKey(2), family="logistic", n=60, p=40, n_test=3, gamma=2.0, sigma=0.0)
    fit = check_fit(newton_fit(d.X, d.y, lam, family="logistic"), d.X, d.y, lam, "logistic")
    A = hessian_inverse(d.X, fit.w, lam)
    ref = exact_loo("logistic", d.X, d.y, d.X0, fit, A, lam, f32_steps=0)
    mixed = exact_loo("logistic", d.X, d.y, d.X0, fit, A, lam)
    assert (mixed.rel_resid <= 1e-10).all() and mixed.n_iter.max() > 8
    np.testing.assert_allclose(mixed.values, ref.values, rtol=0, atol=1e-9 * np.abs(ref.values).max())


def test_corrected_trak_variants_reduce_to_if_and_ns_without_projection():
    """With P = I and lamT = lam: weighted Gram = IF, weighted Gram + ALO factor = NS (exactly)."""
    from sims.engine.estimators import trak_variants

    lam = 0.3
    d, fit, A = _setup("logistic", lam=lam)
    IF, NS, _ = if_ns_influence(d.X, d.X0, fit.g, fit.w, A, d.X @ A)
    v = trak_variants(jax.random.PRNGKey(0), d.X, d.X0, fit.g, fit.w, lam, k=24, n_proj=1, projection="identity")
    np.testing.assert_allclose(v["trak_w"], IF, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(v["trak_wlev"], NS, rtol=1e-9, atol=1e-13)
    plain = trak_influence(jax.random.PRNGKey(0), d.X, d.X0, fit.g, lam, k=24, n_proj=1, projection="identity")
    np.testing.assert_allclose(v["trak"], plain, rtol=1e-10, atol=1e-14)


def test_corrected_trak_variants_match_direct_numpy_formulas():
    from sims.engine.estimators import trak_variants

    d, fit, _ = _setup("poisson")
    key, k, M, lt = jax.random.PRNGKey(3), 8, 2, 0.05
    got = trak_variants(key, d.X, d.X0, fit.g, fit.w, lt, k=k, n_proj=M, projection="gaussian")
    X, X0, g, w = (np.asarray(a) for a in (d.X, d.X0, fit.g, fit.w))
    want = {name: 0.0 for name in got}
    for m in range(M):
        P = np.asarray(projection_matrix(jax.random.fold_in(key, m), X.shape[1], k, "gaussian"))
        Phi, Phi0 = X @ P, X0 @ P
        for name, weights in (("", np.ones_like(w)), ("_w", w)):
            Ginv = np.linalg.inv(Phi.T @ (weights[:, None] * Phi) + lt * np.eye(k))
            S = -(Phi0 @ Ginv @ Phi.T) * g
            h = np.einsum("ij,jk,ik->i", Phi, Ginv, Phi)
            want["trak" + name] += S / M
            want[("trak_lev" if not name else "trak_wlev")] += S / (1 - weights * h) / M
    for name in got:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-8, atol=1e-12)


def _kernel_loo_gaussian(X, y, X0, lam):
    """Brute-force ridge LOO in the well-conditioned n x n form: beta = X^T (X X^T + lam)^{-1} y."""
    X, y, X0 = (np.asarray(a) for a in (X, y, X0))
    n = X.shape[0]
    fit = lambda Xs, ys: Xs.T @ np.linalg.solve(Xs @ Xs.T + lam * np.eye(Xs.shape[0]), ys)  # noqa: E731
    beta = fit(X, y)
    out = np.empty((X0.shape[0], n))
    for i in range(n):
        keep = np.arange(n) != i
        out[:, i] = X0 @ (beta - fit(X[keep], y[keep]))
    return out


def test_near_interpolation_ns_and_loo_are_exact():
    """n < p, lam = 1e-8: H has p - n eigenvalues lam; NS (= LOO for gaussian) and exact LOO
    must still match a well-conditioned brute force (the p x p inverse alone is off by ~25%)."""
    from sims.engine.estimators import if_ns_influence_kernel

    lam = 1e-8
    d = make_data(jax.random.PRNGKey(0), family="gaussian", n=50, p=100, n_test=3, gamma=1.0, sigma=0.5)
    fit = check_fit(newton_fit(d.X, d.y, lam, family="gaussian"), d.X, d.y, lam, "gaussian")
    brute = _kernel_loo_gaussian(d.X, d.y, d.X0, lam)
    _, NS, _ = if_ns_influence_kernel(d.X, d.X0, fit.g, fit.w, lam)
    np.testing.assert_allclose(NS, brute, rtol=0, atol=1e-6 * np.abs(brute).max())
    A = hessian_inverse(d.X, fit.w, lam)
    loo = exact_loo("gaussian", d.X, d.y, d.X0, fit, A, lam)
    assert loo.tracked                         # A is too inaccurate for the identity form
    np.testing.assert_allclose(loo.values, brute, rtol=0, atol=1e-6 * np.abs(brute).max())


@pytest.mark.parametrize("family", FAMILIES)
def test_kernel_form_of_if_ns_equals_the_hessian_form(family):
    lam = 0.05
    d, fit, A = _setup(family, n=30, p=60, lam=lam)
    from sims.engine.estimators import if_ns_influence_kernel

    for a, b in zip(if_ns_influence_kernel(d.X, d.X0, fit.g, fit.w, lam),
                    if_ns_influence(d.X, d.X0, fit.g, fit.w, A, d.X @ A)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-13)
