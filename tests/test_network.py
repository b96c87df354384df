"""TRAK on a trained network (sims.network): the solver, the linearized LOO, TRAK's formula, errors.

One small perceptron (H = 3 hidden units, n = 60 digits, p = 190) is trained once per module. The
fast tests keep to its shapes (the CLI smoke included), so that the jit-compiled kernels are compiled
once per test session and shared through the persistent compilation cache (tests/conftest.py);
compilation, not arithmetic, is what these tests cost. The larger variant is marked slow.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

pytest.importorskip("sklearn")

from sims.cli import main  # noqa: E402
from sims.engine.estimators import projection_matrix  # noqa: E402
from sims.engine.fit import Fit, newton_fit  # noqa: E402
from sims.engine.loo import exact_loo  # noqa: E402
from sims.network.data import split  # noqa: E402
from sims.network.estimators import inverse, trak_estimators, trak_margin_form  # noqa: E402
from sims.network.loo import network_loo, refit_point, woodbury_parts  # noqa: E402
from sims.network.model import (Shapes, dense_u, features, init_params, layout, logistic_parts,  # noqa: E402
                                make_model, output_hessian_core)
from sims.network.train import dense_hessian, train  # noqa: E402
from theory.errors import NotConvergedError  # noqa: E402

LAM, H, N = 4.0, 3, 60


@pytest.fixture(scope="module")
def net():
    data = split("digits", N, 4, jax.random.PRNGKey(5))
    shapes = Shapes(data.X.shape[1], H)
    X, y, X0 = jnp.asarray(data.X), jnp.asarray(data.y), jnp.asarray(data.X0)
    tr = train(shapes, init_params(jax.random.PRNGKey(6), shapes), X, y, LAM, tol=1e-11)
    theta = jnp.asarray(tr.theta)
    _, f_batch = make_model(shapes)
    f = f_batch(theta, X)
    _, g, w = logistic_parts(y, f)
    Phi, Phi0 = features(shapes, theta, X), features(shapes, theta, X0)
    A = inverse(dense_hessian(shapes, theta, X, y, LAM, jnp.ones(N)))
    return dict(shapes=shapes, X=X, y=y, X0=X0, theta=theta, f=f, g=g, w=w, Phi=Phi, Phi0=Phi0, A=A, tr=tr)


def test_layout_and_output_hessian_factorization(net):
    sh = net["shapes"]
    flat, unr = ravel_pytree({"W": jnp.zeros((sh.H, sh.d)), "b": jnp.zeros(sh.H), "v": jnp.zeros(sh.H),
                              "c": jnp.zeros(())})
    lay = layout(sh)
    probe = unr(jnp.arange(sh.p, dtype=float))
    for name in ("W", "b", "v", "c"):
        start, stop = lay[name]
        np.testing.assert_array_equal(np.asarray(probe[name]).ravel(), np.arange(start, stop))
    f, _ = make_model(sh)
    x = net["X"][0]
    exact = jax.hessian(f)(net["theta"], x)
    U = dense_u(sh, np.asarray(x))
    np.testing.assert_allclose(U @ np.asarray(output_hessian_core(sh, net["theta"], x)) @ U.T, exact, atol=1e-13)


def test_training_reaches_a_strict_minimum(net):
    assert net["tr"].rel_grad <= 1e-11
    assert net["tr"].min_eig > 0


def test_woodbury_leave_one_out_hessian(net):
    sh, i = net["shapes"], int(np.argmax(np.abs(np.asarray(net["g"]))))
    weights = jnp.asarray((np.arange(N) != i).astype(float))
    Hi = dense_hessian(sh, net["theta"], net["X"], net["y"], LAM, weights)
    B, M, kd = woodbury_parts(sh, net["A"], net["theta"], net["X"][i], net["Phi"][i], net["g"][i], net["w"][i])
    v = jax.random.normal(jax.random.PRNGKey(0), (sh.p,))
    ref = jnp.linalg.solve(Hi, v)
    np.testing.assert_allclose(net["A"] @ v + B @ (M @ (B.T @ v)), ref, rtol=1e-9, atol=1e-12 * float(jnp.abs(ref).max()))
    assert (float(kd) < 1) == bool(jnp.linalg.eigvalsh(Hi)[0] > 0)


def test_network_loo_equals_warm_started_retraining(net):
    sh = net["shapes"]
    loo = network_loo(sh, net["theta"], net["X"], net["y"], net["X0"], LAM, net["A"], net["Phi"], net["g"],
                      net["w"], tol=1e-10)
    assert np.all(np.isfinite(loo.values)) and np.all(loo.rel_resid <= 1e-10)
    _, f_batch = make_model(sh)
    f0 = f_batch(net["theta"], net["X0"])
    order = np.argsort(-np.abs(np.asarray(net["g"])))
    for i in (int(order[0]), int(order[1]), int(order[-1])):
        th, rel, _ = refit_point(sh, net["theta"], net["X"], net["y"], LAM, i, tol=1e-13)
        ref = np.asarray(f0 - f_batch(th, net["X0"]))
        np.testing.assert_allclose(loo.values[:, i], ref, rtol=0, atol=1e-8 * max(np.abs(ref).max(), 1e-3))
    # the Newton step is an approximation, not the answer, for the largest-residual point
    i = int(order[0])
    assert np.abs(loo.newton_step[:, i] - loo.values[:, i]).max() > 1e-6


def test_linearized_loo_equals_refits_with_offset(net):
    Phi, Phi0, theta, f, g, w = (net[k] for k in ("Phi", "Phi0", "theta", "f", "g", "w"))
    p = Phi.shape[1]
    offset = f - Phi @ theta
    A_gn = inverse((Phi.T * w) @ Phi + LAM * jnp.eye(p))
    fit = Fit(theta, f, g, w, Phi.T @ g + LAM * theta, jnp.asarray(0), jnp.asarray(0.0), jnp.asarray(0, jnp.int32))
    lin = exact_loo("logistic", Phi, net["y"], Phi0, fit, A_gn, LAM, tol=1e-11, offset=offset)
    # theta_hat is also the minimizer of the linearized model (all-ones weights: the refits' trace)
    full = newton_fit(Phi, net["y"], LAM, family="logistic", tol=1e-13, weights=jnp.ones(N), offset=offset)
    np.testing.assert_allclose(full.beta, theta, atol=1e-8)
    for i in (0, 7, int(np.argmax(np.abs(np.asarray(g))))):
        weights = jnp.asarray((np.arange(N) != i).astype(float))
        refit = newton_fit(Phi, net["y"], LAM, family="logistic", tol=1e-13, weights=weights, offset=offset)
        assert int(refit.status) == 0
        np.testing.assert_allclose(lin.values[:, i], Phi0 @ (theta - refit.beta), rtol=1e-7, atol=1e-10)


def test_newton_fit_offset_none_is_unchanged(net):
    # offset = 0 compiles as in test_linearized_loo_equals_refits_with_offset
    X, y, ones = net["Phi"], net["y"], jnp.ones(N)
    a = newton_fit(X, y, LAM, family="logistic", tol=1e-13, weights=ones)
    b = newton_fit(X, y, LAM, family="logistic", tol=1e-13, weights=ones, offset=jnp.zeros(N))
    np.testing.assert_allclose(a.beta, b.beta, rtol=1e-13, atol=1e-15)


def test_trak_on_phi_equals_the_margin_formula(net):
    Phi, Phi0, g, w = net["Phi"], net["Phi0"], net["g"], net["w"]
    p, k, key = Phi.shape[1], 40, jax.random.PRNGKey(3)
    for lam_t in (0.0, 2.0):
        ours = trak_estimators(key, Phi, Phi0, g, w, lam_t, k=k, n_proj=1)["trak"]
        P = projection_matrix(jax.random.fold_in(key, 0), p, k, "gaussian")
        ref = trak_margin_form(P, Phi, Phi0, net["y"], net["f"], lam_t)
        np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-12 * np.abs(ref).max())


def test_training_that_does_not_converge_raises(net):
    sh = net["shapes"]
    with pytest.raises(NotConvergedError):
        train(sh, init_params(jax.random.PRNGKey(6), sh), net["X"], net["y"], LAM, lbfgs_iters=0, max_iter=1)


def test_cli_exit_codes_and_json(capsys):
    # the module's shapes (H = 3, n = 60, 4 test points; k = round(0.21 p) = 40 as in the TRAK test)
    small = ["network", "--hidden", str(H), "--n-train", str(N), "--n-test", "4", "--kappa", "0.21", "--no-theory"]
    assert main(small + ["--lbfgs-iters", "0", "--max-iter", "1"]) == 3
    assert "not converged" in capsys.readouterr().err
    for bad in (["--hidden", "0"], ["--n-train", "5000"], ["--kappa", "0"], ["--n-proj", "0"], ["--lam", "0"]):
        assert main(["network", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.endswith(".")
    assert main(small + ["--n-proj", "1", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["p"] == H * (61 + 2) + 1 and out["trak"][0]["k"] == 40
    assert set(out["estimators"]) == {"if_exact", "ns_exact", "if_gn", "ns_gn", "newton_step"}
    for sc in out["estimators"].values():
        assert set(sc) >= {"network_loo", "linearized_loo"}
    assert len(out["trak"]) == 2 and out["linearization_gap"]["pearson"]["mean"] > 0.5
    assert out["trak"][0]["estimators"]["trak"]["network_loo"]["spearman"]["mean"] is not None


@pytest.mark.slow
def test_larger_network_loo_and_pipeline():
    """H = 6, n = 150 (p = 379): network LOO against dense warm-started refits on the three
    largest-residual points, through run_network with the theory and its own checks."""
    from sims.network import run_network

    res = run_network(hidden=6, n_train=150, n_test=4, kappas=(0.1, 1.0), n_projs=(1, 4), lam_trak=(0.0, 1.0),
                      draws=1, check_points=3)
    assert res["training"]["hessian_min_eig"] > 0 and res["loo"]["rel_resid_max"] <= 1e-10
    for c in res["checks"]["points"]:
        assert c["warm_min_eig"] > 0
        assert c["max_abs_diff_vs_warm_refit"] <= 1e-8 * max(c["loo_scale"], 1e-3)
    lin = res["estimators"]["ns_gn"]["linearized_loo"]["pearson"]["mean"]
    assert lin > 0.99      # ns_gn is the linearized model's ALO
    assert all("theory" in g for g in res["trak"])
