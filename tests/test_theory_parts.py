"""Theory building blocks: fixed point, Marchenko–Pastur traces, separability boundary."""

import jax.numpy as jnp
import numpy as np
import pytest

import theory
from theory.errors import EstimatorDoesNotExistError
from theory.families import get_family
from theory.fixed_point import _newton, _start, gaussian_fixed_point, solve_fixed_point
from theory.glm_law import atoms, law_grid
from theory.solvers import Status
from theory.traces import effective_ridge, kernel_traces, mp_b, mp_s2

GAUSSIAN, LOGISTIC = get_family("gaussian"), get_family("logistic")    # internals take a Family


def test_gaussian_fixed_point_by_quadrature_equals_closed_form():
    delta, lam, gamma, sigma = 2.0, 0.1, 1.0, 0.5
    closed = gaussian_fixed_point(delta, lam, gamma, sigma)
    x, res, status = _newton(jnp.asarray(_start(GAUSSIAN, delta, lam, gamma)), law_grid(GAUSSIAN, gamma, sigma, 30),
                     delta, lam, family=GAUSSIAN)
    assert float(res) < 1e-12 and int(status) == Status.CONVERGED
    np.testing.assert_allclose([np.exp(x[0]), x[1] * gamma, np.exp(x[2])],
                               [closed.c, closed.m, closed.r], rtol=1e-10)


@pytest.mark.parametrize("family, delta, lam, gamma", [
    ("logistic", 2.0, 0.1, 1.0), ("logistic", 0.5, 1.0, 2.0), ("logistic", 3.0, 0.01, 3.0),
    ("poisson", 2.0, 0.1, 0.5), ("poisson", 1.0, 1.0, 1.0),
])
def test_fixed_point_solves_its_equations(family, delta, lam, gamma):
    family = get_family(family)
    fp, x = solve_fixed_point(family, delta, lam, gamma, 0.0)
    _, _, g, w, wt = atoms(law_grid(family, gamma, 0.0), family, fp.c, x[1], fp.r)
    nu = jnp.asarray(law_grid(family, gamma, 0.0).nu)
    assert 1 / fp.c == pytest.approx(lam + delta * float(jnp.sum(wt * w / (1 + fp.c * w))), rel=1e-10)
    assert lam * fp.m == pytest.approx(-delta * gamma * float(jnp.sum(wt * nu * g)), rel=1e-9, abs=1e-12)
    assert fp.r**2 == pytest.approx(delta * fp.c**2 * float(jnp.sum(wt * g * g)), rel=1e-10)


@pytest.mark.parametrize("vary, values", [("delta", np.geomspace(0.6, 4.0, 9)), ("lam", np.geomspace(1e-2, 10, 9))])
def test_predict_curve_equals_predict_at_each_value(vary, values):
    params = dict(family="logistic", delta=2.0, lam=0.1, kappa=0.25, gamma=1.0)
    curve = theory.predict_curve(vary, list(values), **{k: v for k, v in params.items() if k != vary})
    for i, v in enumerate(values):
        one = theory.predict(**{**params, vary: v})
        for e, row in one["estimators"].items():
            for metric, value in row.items():
                assert curve["estimators"][e][metric][i] == pytest.approx(value, rel=1e-8, abs=1e-10), (e, metric, v)


def test_quadrature_is_converged_in_the_number_of_nodes():
    a, _ = solve_fixed_point(LOGISTIC, 2.0, 0.1, 2.0, 0.0, nodes=40)
    b, _ = solve_fixed_point(LOGISTIC, 2.0, 0.1, 2.0, 0.0, nodes=60)
    np.testing.assert_allclose(a, b, rtol=1e-6)   # 40 nodes: ~1e-7 relative at gamma = 2


def test_separability_boundary_matches_candes_sur_values():
    got = [get_family("logistic").separability(g) for g in (0.0, 1.0, 2.0, 3.0, 5.0)]
    np.testing.assert_allclose(got, [2.0, 2.28, 2.90, 3.67, 5.40], atol=0.006)


def test_lam_zero_beyond_separability_is_refused_and_just_above_is_solved():
    with pytest.raises(EstimatorDoesNotExistError, match="separable"):
        solve_fixed_point(LOGISTIC, 2.2, 0.0, 1.0, 0.0)
    fp, _ = solve_fixed_point(LOGISTIC, 4.0, 0.0, 1.0, 0.0)
    small, _ = solve_fixed_point(LOGISTIC, 4.0, 1e-6, 1.0, 0.0)
    np.testing.assert_allclose(fp, small, rtol=1e-4)


def test_marchenko_pastur_trace_and_its_derivative():
    for delta in (0.5, 1.0, 2.0, 4.0):
        for mu in (1e-3, 0.1, 1.0, 10.0):
            b = float(mp_b(mu, delta))
            assert b == pytest.approx(1.0 / (mu + delta / (1.0 + b)), rel=1e-13)
            h = 1e-6 * mu
            fd = -(float(mp_b(mu + h, delta)) - float(mp_b(mu - h, delta))) / (2 * h)
            assert float(mp_s2(mu, delta)) == pytest.approx(fd, rel=1e-6)
    assert float(mp_b(0.0, 3.0)) == pytest.approx(0.5)


def test_effective_ridge_solves_its_equation_and_limits():
    for kappa, lam_t, delta in [(0.5, 0.1, 2.0), (0.1, 1.0, 0.5), (1.0, 0.3, 4.0)]:
        mu = float(effective_ridge(kappa, lam_t, delta, identity=False))
        b = float(mp_b(mu, delta))
        assert lam_t == pytest.approx(mu * (1 - (1 - mu * b) / kappa), rel=1e-10)
        assert mu >= lam_t
    mu0 = float(effective_ridge(0.25, 0.0, 2.0, identity=False))
    assert mu0 == pytest.approx((1 - 0.25) * (2 - 0.25) / 0.25)
    assert float(mp_b(mu0, 2.0)) == pytest.approx(0.25 / (2 - 0.25))   # c_T = kappa/(delta - kappa)
    # continuity of the lam_T -> 0 limit
    assert float(effective_ridge(0.25, 1e-9, 2.0, identity=False)) == pytest.approx(mu0, rel=1e-6)


def test_traces_special_cases():
    common = dict(delta=2.0, lam=0.3, c=float(mp_b(0.3, 2.0)), e_w_w=None, e_w2_w2=None)
    c = common["c"]
    common.update(e_w_w=1 / (1 + c), e_w2_w2=1 / (1 + c) ** 2)       # w = 1 (gaussian)
    same = kernel_traces(kappa=1.0, lam_trak=0.3, n_proj=1, identity=True, **common)
    assert float(same["rho"]) == pytest.approx(1.0, abs=1e-12)    # B = A when P = I, lam_T = lam
    assert float(same["tau_A2"]) == pytest.approx(float(mp_s2(0.3, 2.0)), rel=1e-12)
    assert float(same["tau_AB"]) == pytest.approx(float(same["tau_A2"]), rel=1e-12)
    # kappa = 1, lam_T = 0 with a random square P is B = Sigma^{-1}: same as P = I, lam_T = 0
    sq = kernel_traces(kappa=1.0, lam_trak=0.0, n_proj=3, identity=False, **common)
    eye = kernel_traces(kappa=1.0, lam_trak=0.0, n_proj=1, identity=True, **common)
    for key in ("c_T", "tau_B2", "tau_AB", "rho"):
        assert float(sq[key]) == pytest.approx(float(eye[key]), rel=1e-9)
    # lam_T = 0 closed forms of the derivation guide
    k, d = 0.5, 2.0
    t = kernel_traces(kappa=k, lam_trak=0.0, n_proj=1, identity=False, **common)
    assert float(t["c_T"]) == pytest.approx(k / (d - k))
    assert float(t["tau_B2"]) == pytest.approx(k * d / (d - k) ** 3)
    assert float(t["s2"]) == pytest.approx(k**2 * d / ((d - k) ** 2 * (d - k**2)))
    # many projections: tau(B_bar^2) -> s2
    many = kernel_traces(kappa=k, lam_trak=0.0, n_proj=10**6, identity=False, **common)
    assert float(many["tau_Bbar2"]) == pytest.approx(float(many["s2"]), rel=1e-5)


def test_tau_A2_is_minus_the_lambda_derivative_of_c_at_fixed_w_law():
    fp, x = solve_fixed_point(LOGISTIC, 2.0, 0.1, 1.0, 0.0)
    _, _, g, w, wt = atoms(law_grid(LOGISTIC, 1.0, 0.0), LOGISTIC, fp.c, x[1], fp.r)

    def c_of(lam):   # solve (F1) for c with the w-law frozen
        c = fp.c
        for _ in range(200):
            c = 1.0 / (lam + 2.0 * float(jnp.sum(wt * w / (1 + c * w))))
        return c

    h = 1e-5
    fd = -(c_of(0.1 + h) - c_of(0.1 - h)) / (2 * h)
    tr = kernel_traces(delta=2.0, lam=0.1, kappa=1.0, lam_trak=0.1, n_proj=1, identity=True, c=fp.c,
                       e_w_w=float(jnp.sum(wt * w / (1 + fp.c * w))),
                       e_w2_w2=float(jnp.sum(wt * (w / (1 + fp.c * w)) ** 2)))
    assert float(tr["tau_A2"]) == pytest.approx(fd, rel=1e-5)


def test_batched_variants_curve_does_not_deadlock():
    """predict_curve over delta with variants=True batches the Gauss rules' eigh; XLA:CPU's batched
    LAPACK eigh deadlocked its 2-thread pool there (all threads parked, forever). A subprocess with
    a timeout turns a regression into a failure instead of a hung suite."""
    import subprocess
    import sys

    code = ("import numpy as np, theory; r = theory.predict_curve('delta', list(np.geomspace(0.4, 4.5, 30)), "
            "variants=True, family='logistic', lam=0.1, gamma=2.0, lam_trak=0.01, kappa=1.0); "
            "print(float(np.min(r['estimators']['trak_w']['spearman'])))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240,
                         env={**__import__("os").environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert 0.0 < float(out.stdout.strip().splitlines()[-1]) < 1.0


def test_general_variant_traces_reduce_to_the_isotropic_ones():
    """A flat spectrum through the general-covariance path gives the isotropic variants exactly."""
    from theory.prediction import predict_spectrum

    for cfg in (dict(family="logistic", delta=2.0, gamma=1.0, lam=0.1, kappa=0.5, lam_trak=0.05, n_proj=2),
                dict(family="logistic", delta=2.0, gamma=1.0, lam=0.1, kappa=0.5, lam_trak=0.0)):
        iso = theory.predict(**cfg, variants=True)
        gen = predict_spectrum(np.ones(50), **cfg, variants=True)
        for e in ("trak_w", "trak_lev", "trak_wlev"):
            for metric, value in iso["estimators"][e].items():
                assert gen["estimators"][e][metric] == pytest.approx(value, rel=1e-8), (cfg, e, metric)


@pytest.mark.parametrize("kind, param, kappa, lam_trak, lam", [("power", 1.0, 0.5, 0.1, 0.1), ("ar1", 0.9, 0.5, 0.0, 0.1)])
def test_weighted_kernel_traces_general_match_random_draws(kind, param, kappa, lam_trak, lam):
    """Each trace of the sketched weighted kernel B_w = P (P^T X^T W X P + lamT)^{-1} P^T under a
    power-law / AR(1) spectrum, averaged over 4 draws at p = 500 (n = 1000, w iid from a 3-atom law),
    within 5% of `weighted_kernel_traces_general` (worst seen: 2.8%; single draws scatter 2-8% at
    p = 400-1600, shrinking with p)."""
    from theory.covariance import spectrum
    from theory.general import _weighted_c, weighted_kernel_traces_general

    rng = np.random.default_rng(1)
    p, delta = 500, 2.0
    n, k = int(delta * p), int(kappa * p)
    wv, wt = np.array([0.05, 0.25, 0.6]), np.array([0.3, 0.4, 0.3])
    s = spectrum(kind, p, param)
    S = s / p
    draws = []
    for _ in range(4):
        X = rng.standard_normal((n, p)) * np.sqrt(S)
        Sw = (X.T * rng.choice(wv, size=n, p=wt)) @ X
        A = np.linalg.inv(Sw + lam * np.eye(p))

        def sketched():
            P = rng.standard_normal((p, k)) / np.sqrt(k)
            return P @ np.linalg.solve(P.T @ Sw @ P + lam_trak * np.eye(k), P.T)

        B1, B2 = sketched(), sketched()
        SA, SB1, SB2 = S[:, None] * A, S[:, None] * B1, S[:, None] * B2
        draws.append([np.trace(SA), p * np.sum(SA * SA.T), np.trace(SB1), p * np.sum(SA * SB1.T),
                      p * np.sum(SB1 * SB1.T), p * np.sum(SB1 * SB2.T)])
    c, tau_A2, c_T_w, tau_AB_w, tau_B2_w, s2_w = np.mean(draws, axis=0)
    c_th, _ = _weighted_c(s, delta, lam, wv, wt)
    th = weighted_kernel_traces_general(s=s, delta=delta, lam=lam, kappa=kappa, lam_trak=lam_trak, n_proj=1,
                                        identity=False, c=c_th, tau_A2=tau_A2, w=wv, wt=wt)
    assert c_th == pytest.approx(c, rel=0.02)
    assert th["c_T_w"] == pytest.approx(c_T_w, rel=0.05)
    assert th["tau_AB_w"] == pytest.approx(tau_AB_w, rel=0.05)
    assert th["tau_B2_w"] == pytest.approx(tau_B2_w, rel=0.05)
    assert th["s2_w"] == pytest.approx(s2_w, rel=0.05)
    assert th["tau_B2_w"] > 1.2 * th["s2_w"]          # the second-order sketch term is visible


# ------------------------------------------------------------------ LDS (theory/lds.py)
def test_lds_two_replica_constants_match_random_draws():
    """The coupled fixed point (kappa_12 of two random half-subsets, kappa_1a of the full fit and a
    subset) and the cross traces tau(A_S A_S'), tau(A A_S) against fitted logistic ridge models
    (3 draws at p = 400, n = 800; seen: within 1.4% of the mean of 3 draws at p = 500)."""
    import jax.numpy as jnp

    from sims.engine.fit import newton_fit
    from theory.lds import lds_constants

    fam, delta, lam, gamma, alpha, p = LOGISTIC, 2.0, 0.1, 1.0, 0.5, 400
    n = int(delta * p)
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(3):
        X = rng.standard_normal((n, p)) / np.sqrt(p)
        beta_star = gamma * rng.standard_normal(p)
        y = (rng.random(n) < 1 / (1 + np.exp(-X @ beta_star))).astype(float)

        def fit(v):
            f = newton_fit(jnp.asarray(X), jnp.asarray(y), lam, family=fam, weights=jnp.asarray(v))
            H = (X.T * (v * np.asarray(f.w))) @ X + lam * np.eye(p)
            return np.asarray(f.beta), np.linalg.inv(H)

        masks = [np.zeros(n), np.zeros(n)]
        for m in masks:
            m[rng.permutation(n)[:n // 2]] = 1.0
        (b, A), (b1, A1), (b2, A2) = fit(np.ones(n)), fit(masks[0]), fit(masks[1])
        g2 = beta_star @ beta_star / p
        m0, m1, m2 = (beta_star @ v / p for v in (b, b1, b2))
        draws.append([b1 @ b2 / p - m1 * m2 / g2, (b @ b1 / p - m0 * m1 / g2 + b @ b2 / p - m0 * m2 / g2) / 2,
                      np.sum(A1 * A2) / p, (np.sum(A * A1) + np.sum(A * A2)) / (2 * p)])
    k12, k1a, t_AbarAbar, t_AAbar = np.mean(draws, axis=0)
    full, _ = solve_fixed_point(fam, delta, lam, gamma, 0.0)
    k = lds_constants(family=fam, delta=delta, lam=lam, gamma=gamma, sigma=0.0, alpha=alpha, full=full, c_T=1.0)
    assert k["kappa_12"] == pytest.approx(k12, rel=0.06)
    assert k["kappa_1a"] == pytest.approx(k1a, rel=0.06)
    assert k["tau_Abar2"] == pytest.approx(t_AbarAbar, rel=0.02)
    assert k["tau_AAbar"] == pytest.approx(t_AAbar, rel=0.02)
    # the a = b case of kappa_ab = delta pi c_a c_b E[g^a g^b] is (F3); E[gbar^2] closes kappa_12
    assert k["e_gbar2"] == pytest.approx(k["kappa_12"] / (delta * alpha**2 * k["c_alpha"] ** 2), rel=1e-9)


def test_lds_prediction_structure_and_validation():
    from theory.errors import InvalidParameterError

    r = theory.predict(family="logistic", delta=2.0, lam=0.1, kappa=0.5, lds_alpha=0.5, variants=True)
    est, const = r["estimators"], r["constants"]
    assert set(est["loo"]) == {"lds"}
    assert est["ns"]["lds"] == est["loo"]["lds"]                 # NS = LOO to first order
    assert est["trak_lev"]["lds"] == est["trak"]["lds"]          # a constant factor: same ranking
    assert 0 < const["lds_R2"] < 1
    assert est["trak"]["lds"] < est["loo"]["lds"] < 6 / np.pi * np.arcsin(0.5)   # below rho = 1
    finite_j = theory.predict(family="logistic", delta=2.0, lam=0.1, kappa=0.5, lds_alpha=0.5, lds_subsets=20)
    assert finite_j["estimators"]["loo"]["lds"] < est["loo"]["lds"]
    for bad in (0, 1, 1.0, -0.2, 1.5, float("nan"), "0.5", True):
        with pytest.raises(InvalidParameterError):
            theory.predict(lds_alpha=bad)
    with pytest.raises(InvalidParameterError):
        theory.predict(covariance="power", cov_param=1.0, p=50, lds_alpha=0.5)
    with pytest.raises(InvalidParameterError):
        theory.predict(lds_subsets=20)


def test_expected_sample_spearman_matches_monte_carlo():
    from theory.lds import expected_sample_spearman

    rng = np.random.default_rng(0)
    J, rho, reps = 20, 0.8, 20000
    z = rng.standard_normal((reps, J, 2))
    a, b = z[..., 0], rho * z[..., 0] + np.sqrt(1 - rho**2) * z[..., 1]
    ra, rb = a.argsort(1).argsort(1), b.argsort(1).argsort(1)
    rs = 1 - 6 * np.sum((ra - rb) ** 2, axis=1) / (J * (J * J - 1))
    assert expected_sample_spearman(rho, J) == pytest.approx(rs.mean(), abs=4 * rs.std() / np.sqrt(reps))
    assert expected_sample_spearman(rho, J) < 6 / np.pi * np.arcsin(rho / 2)


@pytest.mark.slow
def test_lds_factors_match_a_direct_datamodel_regression():
    """Each factor of rho = Corr_i(LOO, phi) R separately (gaussian ridge, p = 150, 3000 random
    half-subsets, 10 test points): phi_i = Cov_S(m_i, F)/(alpha(1 - alpha)), R^2 = alpha(1 - alpha)
    sum phi~^2 / Var_S F, both corrected for the sampling noise of phi (n/J). Seen at p = 200,
    J = 4000: R^2 0.641 +- 0.011 (theory 0.637), Corr 0.9105 +- 0.003 (0.9098), Var_S F 0.257 +- 0.014 (0.251)."""
    rng = np.random.default_rng(3)
    p, delta, lam, gamma, sigma, alpha, J, T = 150, 2.0, 0.1, 1.0, 0.5, 0.5, 3000, 10
    n = int(delta * p)
    X = rng.standard_normal((n, p)) / np.sqrt(p)
    y = X @ (gamma * rng.standard_normal(p)) + sigma * rng.standard_normal(n)
    X0 = rng.standard_normal((T, p)) / np.sqrt(p)
    M = np.zeros((J, n))
    for j in range(J):
        M[j, rng.permutation(n)[:n // 2]] = 1.0
    F = np.empty((T, J))
    for j in range(J):
        Xs = X * M[j][:, None]
        F[:, j] = X0 @ np.linalg.solve(Xs.T @ X + lam * np.eye(p), Xs.T @ y)
    phi = (F - F.mean(1, keepdims=True)) @ (M - M.mean(0)) / (J * alpha * (1 - alpha))
    var_F = F.var(1)
    R2 = alpha * (1 - alpha) * np.sum((phi - phi.mean(1, keepdims=True)) ** 2, 1) / var_F - n / J
    H = X.T @ X + lam * np.eye(p)
    A = np.linalg.inv(H)
    g = X @ np.linalg.solve(H, X.T @ y) - y
    loo = -(X0 @ A @ X.T) * g / (1 - np.sum((X @ A) * X, 1))
    a, b = loo - loo.mean(1, keepdims=True), phi - phi.mean(1, keepdims=True)
    corr = np.sum(a * b, 1) / np.sqrt(np.sum(a * a, 1) * np.sum(b * b, 1)) * np.sqrt(1 + (n / J) / R2)
    C = theory.predict(family="gaussian", delta=delta, lam=lam, gamma=gamma, sigma=sigma, lds_alpha=alpha)["constants"]
    assert R2.mean() == pytest.approx(C["lds_R2"], abs=0.04)
    assert corr.mean() == pytest.approx(C["lds_rho_loo"] / np.sqrt(C["lds_R2"]), abs=0.015)
    assert var_F.mean() == pytest.approx(C["lds_var_F"], rel=0.12)


def test_curve_assembly_in_memory_bounded_chunks_is_unchanged(monkeypatch):
    """Curves run in chunks of CURVE_CHUNK points, fewer where the vmapped assembly would exceed
    CURVE_MEMORY (equal chunks, the last one padded): the same numbers as in one call up to rounding (the batch size changes XLA's
    vectorization; Spearman carries the compressed rule's ~1e-7 sensitivity). A poisson curve with
    variants needs ~570 MB a point."""
    import numpy as np

    import theory.prediction as P

    assert P._curve_chunk(60, 28_672, True) * 28_672 * 21_000 <= P.CURVE_MEMORY
    assert P._curve_chunk(200, 2_560, False) == P._curve_chunk(7, 2_560, False) == P.CURVE_CHUNK
    values = np.geomspace(0.05, 2.0, 7)
    whole = P.predict_curve("lam", values, family="logistic", delta=2.0, kappa=0.5, variants=True)
    monkeypatch.setattr(P, "CURVE_MEMORY", 3 * 2_560 * 21_000)        # chunks of 3: 3 + 3 + 1 (padded)
    chunked = P.predict_curve("lam", values, family="logistic", delta=2.0, kappa=0.5, variants=True)
    for e, row in whole["estimators"].items():
        for k, v in row.items():
            np.testing.assert_allclose(chunked["estimators"][e][k], v, rtol=1e-12 if k != "spearman" else 0,
                                       atol=1e-12 if k != "spearman" else 1e-6)
    for k, v in whole["constants"].items():
        np.testing.assert_allclose(chunked["constants"][k], v, rtol=1e-12)


@pytest.mark.parametrize("vary, values, variants", [("kappa", [0.1, 0.3, 0.6, 1.0], False),
                                                    ("n_proj", [1, 3, 10], True),
                                                    ("lam_trak", [0.01, 0.1, 1.0], False)])
def test_general_curve_equals_predict_spectrum_at_each_value(vary, values, variants):
    """A curve at a given spectrum (or covariance) solves the fixed point once and vmaps the assembly
    over the traces: the numbers of `predict_spectrum` point by point."""
    from theory.covariance import alignment, spectrum

    s = spectrum("power", 90, 1.0)          # 90 entries: the fixed point pads them to 128
    th = alignment(s, 0.5)
    params = dict(family="logistic", delta=2.0, kappa=0.4, lam=0.1, lam_trak=0.05, n_proj=2)
    fixed = {k: v for k, v in params.items() if k != vary}
    curve = theory.predict_curve(vary, values, spectrum=s, theta=th, variants=variants, **fixed)
    by_cov = theory.predict_curve(vary, values, covariance="power", cov_param=1.0, alignment=0.5, p=90, **fixed)
    for i, v in enumerate(values):
        one = theory.predict_spectrum(s, th, variants=variants, **{**params, vary: v})
        for e, row in one["estimators"].items():
            for metric, value in row.items():
                assert curve["estimators"][e][metric][i] == pytest.approx(value, rel=1e-10, abs=1e-12), (e, metric)
                if not variants:       # a single point runs the curve's (padded) program: same bits
                    assert curve["estimators"][e][metric][i] == value, (e, metric)
                if e in by_cov["estimators"]:
                    assert by_cov["estimators"][e][metric][i] == pytest.approx(value, rel=1e-10, abs=1e-12)
        for k, value in one["constants"].items():
            assert curve["constants"][k][i] == pytest.approx(value, rel=1e-12, abs=1e-14), k


def test_general_curve_refuses_ambiguous_inputs():
    with pytest.raises(theory.InvalidParameterError, match="theta needs a spectrum"):
        theory.predict_curve("kappa", [0.5], theta=np.ones(10))
    with pytest.raises(theory.InvalidParameterError, match="either a spectrum or"):
        theory.predict_curve("kappa", [0.5], spectrum=np.ones(10), covariance="power", cov_param=1.0, p=10)
    with pytest.raises(theory.InvalidParameterError, match="needs the dimension p"):
        theory.predict_curve("kappa", [0.5], covariance="power", cov_param=1.0)


def test_general_residual_is_unchanged_by_zero_padding():
    """The general fixed point pads the spectrum with zeros (fewer compiled sizes): every sum of
    (G1)-(G3) has a factor s, so the residual is that of the unpadded spectrum."""
    from theory.covariance import alignment, spectrum
    from theory.general import _padded, _residual
    from theory.glm_law import quadrature

    s = spectrum("spiked", 37, 20.0)
    th = alignment(s, 1.0)
    grid = quadrature(LOGISTIC, 1.0, 0.0, 40)
    x = jnp.asarray([np.log(0.8), 0.4, np.log(0.9)])
    a = _residual(x, s, th, 37.0, LOGISTIC, grid, 2.0, 0.1, 1.0)
    b = _residual(x, _padded(s), _padded(th), 37.0, LOGISTIC, grid, 2.0, 0.1, 1.0)
    assert _padded(s).size == 64
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-14, atol=1e-15)
