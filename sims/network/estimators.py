"""Influence estimators at theta_hat on the after-kernel features, each a (T, n) matrix.

With phi_i = grad_theta f(x_i; theta_hat) (rows of Phi), phi_0 the test point's, logit derivatives
g_i, w_i, the exact Hessian H = Phi^T W Phi + sum_i g_i grad^2 f_i + lam I and the Gauss–Newton
Hessian H_GN = Phi^T W Phi + lam I:

    if_exact     -phi_0^T H^{-1} phi_i g_i                      (IF = -phi_0^T H^{-1} grad l_i)
    ns_exact     if_exact_i / (1 - w_i phi_i^T H^{-1} phi_i)     (GLM-style ALO factor, exact Hessian)
    if_gn        -phi_0^T H_GN^{-1} phi_i g_i
    ns_gn        if_gn_i / (1 - w_i phi_i^T H_GN^{-1} phi_i)     (= ALO of the linearized model)
    newton_step  f_0(theta_hat) - f_0(theta_hat + Delta_1),  Delta_1 = H_{-i}^{-1} g_i phi_i, the
                 exact Newton step of the LOO problem (network-level ALO; `sims.network.loo`)
    the sketched estimators            `sims.engine.estimators.variant_influence` on (Phi, Phi_0, g, w)

TRAK as the public library computes it for binary classification: its training feature is the
gradient of the margin (2 y_i - 1) f(x_i), projected, its Gram matrix unweighted, and its
per-example factor Q_i = 1 - p_i with p_i the probability of the observed label, so that
(2 y_i - 1) phi_i Q_i = -g_i phi_i; scored on the test logit f_0 (the margin of the test point
times its sign), the TRAK score is -phi_0^T P (P^T Phi^T Phi P + lamT I)^{-1} P^T phi_i g_i, the
repository's formula on Phi (`trak_margin_form` writes it the library's way, for tests).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..engine.estimators import SKETCHED, if_ns_influence, variant_influence


def inverse(Hm):
    """A = Hm^{-1} by Cholesky, symmetrized (NaN when Hm is not positive definite)."""
    L = jnp.linalg.cholesky(Hm)
    A = jax.scipy.linalg.cho_solve((L, True), jnp.eye(Hm.shape[0], dtype=Hm.dtype))
    return 0.5 * (A + A.T)


def hessian_estimators(Phi, Phi0, g, w, A_exact, A_gn) -> dict:
    """if_exact, ns_exact, if_gn, ns_gn (module docstring), each (T, n)."""
    out = {}
    for tag, A in (("exact", A_exact), ("gn", A_gn)):
        IF, NS, _ = if_ns_influence(Phi, Phi0, g, w, A, Phi @ A)
        out[f"if_{tag}"], out[f"ns_{tag}"] = np.asarray(IF), np.asarray(NS)
    return out


def trak_estimators(key, Phi, Phi0, g, w, lam_trak: float, *, k: int, n_proj: int,
                    projection: str = "gaussian") -> dict:
    """Every sketched estimator of the registry (`theory.estimators.SKETCHED`: TRAK, its variants and
    the gradient similarity) on the after-kernel features, M = n_proj projections."""
    out = variant_influence(key, Phi, Phi0, g, w, lam_trak, k=k, n_proj=n_proj, projection=projection,
                            names=SKETCHED)
    return {name: np.asarray(v) for name, v in out.items()}


def trak_margin_form(P, Phi, Phi0, y, f, lam_trak: float):
    """TRAK written as the library writes it (binary classification, one projection P, numpy):
    train features (2 y - 1) phi P, Q = 1 - sigmoid((2 y - 1) f), kernel (Psi^T Psi + lamT I)^{-1},
    scored on the test logit: phi_0 P K^{-1} Psi^T diag(Q)."""
    P, Phi, Phi0, y, f = (np.asarray(a, dtype=float) for a in (P, Phi, Phi0, y, f))
    sign = 2.0 * y - 1.0
    Psi = sign[:, None] * (Phi @ P)
    Q = 1.0 - 1.0 / (1.0 + np.exp(-sign * f))
    K = Psi.T @ Psi + lam_trak * np.eye(P.shape[1])
    return (Phi0 @ P) @ np.linalg.solve(K, Psi.T) * Q[None, :]
