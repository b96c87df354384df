"""Random-matrix traces of the IF/ALO and TRAK kernels (docs/theory.md §3).

Notation: Sigma = X^T X with x_i ~ N(0, I/p), n/p = delta; tau(M) = tr(M)/p; A = H^{-1} with
H = X^T diag(w) X + lam I; B = P (P^T Sigma P + lamT I_k)^{-1} P^T with P p x k, k/p = kappa;
B_bar the average of M independent copies of B. Expectations E[.] are over the limit law of w.

    b(mu)   = tau((Sigma + mu)^{-1}),  b = 1/(mu + delta/(1 + b))                       (Marchenko–Pastur)
    s2(mu)  = tau((Sigma + mu)^{-2}) = b^2 / (1 - delta b^2/(1 + b)^2)
    (T2)    tau(A^2) = c^2 / (1 - delta c^2 E[w^2/(1 + c w)^2])
    (T3)    B ~ (Sigma + mu)^{-1} (first order), the effective ridge mu solving
              P = I:          mu = lamT
              P random:       lamT = mu [1 - (1 - mu b(mu)) / kappa],  mu >= lamT
              (lamT = 0:      mu = (1 - kappa)(delta - kappa)/kappa)
    (T4)    c_T = tau(B) = b(mu)
    (T5)    tau(A B) = b / (lam + delta E[w / ((1 + c w)(1 + b))])
    (T6)    tau(B^(m) B^(m')) = s2(mu), m != m'
    (T7)    tau(B^2) = s2                                         (P = I)
                     = s2 (kappa - 1 + 2 mu b) / (kappa - 1 + 2 mu b - mu^2 s2)   (P random, lamT > 0)
                     = b s2 / (b - mu s2)                         (P random, lamT = 0)
    (T8)    tau(B_bar^2) = tau(B^2)/M + (1 - 1/M) s2;   tau(A B_bar) = tau(A B)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mp_b(mu, delta):
    """b(mu) = tau((Sigma + mu I)^{-1}); the cancellation-free positive root, b(0) = 1/(delta - 1)."""
    t = mu + delta - 1.0
    disc = jnp.sqrt(t * t + 4.0 * mu)
    pos = 2.0 / (t + disc)
    neg = (disc - t) / (2.0 * jnp.where(mu > 0, mu, 1.0))
    return jnp.where(t > 0, pos, neg)


def mp_s2(mu, delta):
    """s2(mu) = tau((Sigma + mu I)^{-2}) = -b'(mu)."""
    b = mp_b(mu, delta)
    return b * b / (1.0 - delta * b * b / (1.0 + b) ** 2)


def effective_ridge(kappa, lam_trak, delta, identity: bool):
    """mu of (T3): the ridge of the resolvent (Sigma + mu)^{-1} equivalent to the sketched kernel."""
    if identity:
        return jnp.asarray(lam_trak, dtype=jnp.float64)

    def f(mu):   # increasing in mu, f(lamT) < 0
        return mu * (1.0 - (1.0 - mu * mp_b(mu, delta)) / kappa) - lam_trak

    lo = jnp.asarray(lam_trak, dtype=jnp.float64)
    hi = lam_trak + (1.0 + delta / kappa) * (1.0 + lam_trak)

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        up = f(mid) > 0
        return jnp.where(up, lo, mid), jnp.where(up, mid, hi)

    lo, hi = jax.lax.fori_loop(0, 120, bisect, (lo, hi))
    closed = (1.0 - kappa) * (delta - kappa) / kappa
    return jnp.where(lam_trak == 0, closed, 0.5 * (lo + hi))


def kernel_traces(*, delta, lam, kappa, lam_trak, n_proj, identity: bool, c, e_w_w, e_w2_w2):
    """All traces of the module docstring.

    c = tau(A) (the leverage constant), e_w_w = E[w/(1 + c w)], e_w2_w2 = E[w^2/(1 + c w)^2].
    """
    tau_A2 = c * c / (1.0 - delta * c * c * e_w2_w2)
    mu = effective_ridge(kappa, lam_trak, delta, identity)
    b = mp_b(mu, delta)
    s2 = mp_s2(mu, delta)
    tau_AB = b / (lam + delta * e_w_w / (1.0 + b))
    if identity:
        tau_B2 = s2
    else:
        u = kappa - 1.0 + 2.0 * mu * b
        tau_B2 = jnp.where(lam_trak > 0, s2 * u / (u - mu * mu * s2), b * s2 / (b - mu * s2))
    tau_Bbar2 = tau_B2 / n_proj + (1.0 - 1.0 / n_proj) * s2
    rho = tau_AB / jnp.sqrt(tau_A2 * tau_Bbar2)
    return dict(tau_A2=tau_A2, mu=mu, c_T=b, s2=s2, tau_AB=tau_AB, tau_B2=tau_B2,
                tau_Bbar2=tau_Bbar2, rho=rho)
