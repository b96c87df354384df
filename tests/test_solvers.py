"""The shared solver pieces of theory.solvers and theory.shapes: the bucket rule, conjugate
gradients, the damped Newton minimizer (dense and CG strategies) and the trust-region Newton."""

import numpy as np
import pytest

from theory.shapes import bucket


@pytest.mark.parametrize("per_octave", [1, 2, 4, 8])
def test_bucket_is_the_smallest_allowed_size_at_least_n(per_octave):
    """bucket(n) >= n, padding below n / per_octave, monotone, idempotent, and every size it
    returns is m 2^e with m in [per_octave, 2 per_octave) (or below per_octave)."""
    sizes = [bucket(n, per_octave=per_octave) for n in range(0, 5000)]
    for n, b in enumerate(sizes):
        assert n <= b <= n + n / per_octave
        assert bucket(b, per_octave=per_octave) == b
        if b >= per_octave:
            m = b >> (b.bit_length() - per_octave.bit_length())
            assert per_octave <= m < 2 * per_octave and m << (b.bit_length() - per_octave.bit_length()) == b
    assert all(a <= b for a, b in zip(sizes, sizes[1:]))
    assert len(set(sizes[1025:2049])) == per_octave       # per_octave sizes in the octave (1024, 2048]


def test_bucket_minimum_and_powers_of_two():
    assert [bucket(n, minimum=8, per_octave=1) for n in (0, 1, 8, 9, 16, 17, 1000)] == [8, 8, 8, 16, 16, 32, 1024]
    assert bucket(16385, minimum=1 << 14) == 20480 and bucket(3, minimum=1 << 14) == 1 << 14
    with pytest.raises(ValueError):
        bucket(10, per_octave=3)


def _spd(p, seed, cond=1e3):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    return (Q * np.geomspace(1.0, cond, p)) @ Q.T, rng.standard_normal(p)


@pytest.mark.parametrize("host", [False, True])
def test_conjugate_gradient_solves_a_random_spd_system(host):
    """Preconditioned CG (jit, and eagerly with host products) against a direct solve, and the
    Jacobi preconditioner cuts the steps on a badly scaled system."""
    import jax
    import jax.numpy as jnp

    from theory.solvers import Status, conjugate_gradient, host_while_loop

    A, b = _spd(40, 0)
    D = np.geomspace(1.0, 100.0, 40)
    A = D[:, None] * A * D[None, :]                        # badly scaled rows and columns
    want = np.linalg.solve(A, b)
    kw = dict(atol=1e-10 * np.linalg.norm(b), max_iter=400)
    if host:
        solve = lambda pre: conjugate_gradient(lambda v: A @ np.asarray(v), b, precond=pre,  # noqa: E731
                                               while_loop=host_while_loop, **kw)
    else:
        solve = lambda pre: jax.jit(lambda b_: conjugate_gradient(lambda v: jnp.asarray(A) @ v, b_,  # noqa: E731
                                                                  precond=pre, **kw))(jnp.asarray(b))
    x, steps, status = solve(lambda r: r / np.diag(A))
    assert int(status) == Status.CONVERGED
    np.testing.assert_allclose(np.asarray(x), want, rtol=1e-7, atol=1e-7 * np.abs(want).max())
    assert np.linalg.norm(A @ np.asarray(x) - b) <= 1e-10 * np.linalg.norm(b)
    _, plain_steps, _ = solve(lambda r: r)
    assert int(steps) < int(plain_steps)


def test_conjugate_gradient_reports_the_cap_and_indefinite_matrices():
    import jax.numpy as jnp

    from theory.solvers import Status, conjugate_gradient

    A, b = _spd(30, 1)
    x, steps, status = conjugate_gradient(lambda v: jnp.asarray(A) @ v, jnp.asarray(b), precond=lambda r: r,
                                          atol=1e-14, max_iter=3)
    assert (int(steps), int(status)) == (3, Status.MAX_STEPS) and float(np.asarray(x) @ b) > 0   # a descent direction
    B = A - 2.0 * np.eye(30)                          # eigenvalues 1 - 2 < 0 < ...: indefinite
    _, _, status = conjugate_gradient(lambda v: jnp.asarray(B) @ v, jnp.asarray(b), precond=lambda r: r,
                                      atol=1e-14, max_iter=100)
    assert int(status) == Status.INDEFINITE
    x, steps, status = conjugate_gradient(lambda v: jnp.asarray(A) @ v, jnp.zeros(30), precond=lambda r: r,
                                          atol=0.0, max_iter=10)
    assert (int(steps), int(status)) == (0, Status.CONVERGED) and not np.any(np.asarray(x))


def test_damped_newton_strategies_agree_on_a_logistic_ridge_fit():
    """The one damped Newton, with its two linear solves: the engine's Cholesky (`newton_fit`, in
    jit) and the planner's conjugate gradients on streamed products (`fit_glm`, on the host),
    reach the same minimizer of a logistic ridge problem, and the Newton steps agree."""
    import jax.numpy as jnp

    from sims.engine.fit import newton_fit
    from sims.runs.features import feature_spectrum, fit_glm

    rng = np.random.default_rng(2)
    n, p, lam = 300, 40, 0.3
    X = rng.standard_normal((n, p)) / np.sqrt(p)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-X @ rng.standard_normal(p) * 2.0))).astype(float)
    dense = newton_fit(jnp.asarray(X), jnp.asarray(y), lam, family="logistic", tol=1e-12)
    for spec in (feature_spectrum(X), feature_spectrum(X, method="randomized", top=5)):
        beta, info = fit_glm(X, y, "logistic", lam, spec, tol=1e-12)
        assert info["rel_grad"] <= 1e-12 and info["cg_steps"] >= info["newton_steps"]
        np.testing.assert_allclose(beta, np.asarray(dense.beta), rtol=0, atol=1e-10 * np.abs(beta).max())
    assert abs(info["newton_steps"] - int(dense.n_iter)) <= 1


def test_damped_newton_reports_its_status():
    """No minimizer (a gradient that never vanishes) is a status, not a silent NaN."""
    import jax.numpy as jnp

    from theory.solvers import Status, damped_newton_minimize

    def F(b):
        return jnp.sum(jnp.exp(-b))                 # decreasing forever: no minimizer

    def gradient(b):
        return -jnp.exp(-b)

    beta, steps, rel, status = damped_newton_minimize(F, gradient, lambda b: (gradient(b), -jnp.ones_like(b)),
                                                      jnp.zeros(3), tol=1e-10, max_iter=7, grad_scale=1.0)
    assert int(status) == Status.MAX_STEPS and int(steps) == 7 and np.all(np.isfinite(np.asarray(beta)))
    _, _, _, status = damped_newton_minimize(F, gradient, lambda b: (gradient(b), jnp.full_like(b, jnp.nan)),
                                             jnp.zeros(3), tol=1e-10, max_iter=7, grad_scale=1.0)
    assert int(status) == Status.SINGULAR


def test_trust_region_newton_minimizes_a_nonconvex_function_and_reports_the_cap():
    """Rosenbrock's function (indefinite Hessian away from the valley) from (-1.2, 1): the minimum
    (1, 1) to the gradient tolerance; with too few steps the status is MAX_STEPS."""
    import jax
    import jax.numpy as jnp

    from theory.solvers import Status, trust_region_newton

    def F(x):
        return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2

    value_grad, hessian = jax.jit(jax.value_and_grad(F)), jax.jit(jax.hessian(F))
    relative = lambda x, G: float(jnp.linalg.norm(G))  # noqa: E731
    x, rel, steps, status = trust_region_newton(value_grad, hessian, jnp.array([-1.2, 1.0]), relative=relative,
                                                tol=1e-12, max_iter=100)
    assert status == Status.CONVERGED and rel <= 1e-12 and steps > 5
    np.testing.assert_allclose(np.asarray(x), [1.0, 1.0], rtol=0, atol=1e-10)
    _, _, steps, status = trust_region_newton(value_grad, hessian, jnp.array([-1.2, 1.0]), relative=relative,
                                              tol=1e-12, max_iter=3)
    assert (steps, status) == (3, Status.MAX_STEPS)


def test_check_status_raises_the_named_error():
    from theory.errors import EstimatorDoesNotExistError, NotConvergedError
    from theory.solvers import Status, check_status

    check_status(Status.CONVERGED, "the fit")
    with pytest.raises(NotConvergedError, match=r"^the fit reached the iteration cap after 3 steps; raise lam\.$"):
        check_status(Status.MAX_STEPS, "the fit", "after 3 steps", "raise lam")
    with pytest.raises(EstimatorDoesNotExistError, match="has no solution"):
        check_status(Status.DOES_NOT_EXIST, "the fit")
    with pytest.raises(NotConvergedError, match="not positive definite"):
        check_status(Status.INDEFINITE, "the CG")
