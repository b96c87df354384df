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
    (T9)    the sum kernel Pbar = mean of P_m P_m^T: tau(A Pbar) = c, tau(Pbar^2) = 1 + 1/(kappa M) (P = I: 1)
"""

from __future__ import annotations

import jax.numpy as jnp

from .solvers import bisect


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
    lo, hi = bisect(lambda mu: f(mu) > 0, lo, hi, 120)
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
    tau_B2, tau_Bbar2 = sketch_second_order(mu, b, s2, kappa, lam_trak, n_proj, identity)
    rho = tau_AB / jnp.sqrt(tau_A2 * tau_Bbar2)
    return dict(tau_A2=tau_A2, mu=mu, c_T=b, s2=s2, tau_AB=tau_AB, tau_B2=tau_B2,
                tau_Bbar2=tau_Bbar2, rho=rho, **sum_kernel_traces(c, 1.0, kappa, n_proj, identity))


def sum_kernel_traces(tau_A, tau_S2, kappa, n_proj, identity: bool):
    """Traces of the sum kernel Pbar = (1/M) sum_m P_m P_m^T (gradient similarity; the lamT -> infinity limit of
    lamT B): tau(A Pbar) = tau(A Sigma_pop) (E P P^T = I: first order), and
    tau(Pbar^2) = tau(Sigma_pop^2) + 1/(kappa M) (P random: E[P P^T S P P^T] = S (1 + 1/k) + tr(S) I/k,
    the 1/k dropped; P = I: tau(Sigma_pop^2)). Isotropic: tau_A = c, tau_S2 = 1."""
    extra = 0.0 if identity else 1.0 / (kappa * n_proj)
    return dict(tau_AP=tau_A, tau_P2=tau_S2 + extra)


def sketch_second_order(mu, b, s2, kappa, lam_trak, n_proj, identity: bool):
    """(T7)-(T8): tau(B^2) of one sketched kernel and tau(B_bar^2) of the average of M, from the
    effective ridge mu, b = b(mu) and s2 = -b'(mu) of the Gram matrix's resolvent."""
    if identity:
        tau_B2 = s2
    else:
        u = kappa - 1.0 + 2.0 * mu * b
        tau_B2 = jnp.where(lam_trak > 0, s2 * u / (u - mu * mu * s2), b * s2 / (b - mu * s2))
    return tau_B2, tau_B2 / n_proj + (1.0 - 1.0 / n_proj) * s2


# ------------------------------------------------------------------ weighted (Hessian) kernels
# For the corrected TRAK variants the Gram matrix is weighted: Sigma_w = X^T diag(w) X, with the
# fitted curvatures w (law from the fixed point). Its resolvent trace
#     b_w(mu) = tau((Sigma_w + mu)^{-1}),   1/b_w = mu + delta E[w / (1 + w b_w)]     (as (F1))
# replaces the Marchenko–Pastur b in (T3)-(T8); note b_w(lam) = c and -b_w'(lam) = tau(A^2).
# The sketched weighted kernel B_w = P (P^T Sigma_w P + lamT)^{-1} P^T satisfies (T3) with b_w, and
# tau(A B_w) = tau((Sigma_w + lam)^{-1} (Sigma_w + mu)^{-1}) = (b_w(lam) - b_w(mu)) / (mu - lam)
# (evaluated without cancellation by `weighted_cross_trace`).

_BISECT = 200


def _mu_of_b(b, delta, w, wt):
    """The ridge mu at which b_w(mu) = b: mu = 1/b - delta E[w/(1 + w b)] (decreasing in b)."""
    return 1.0 / b - delta * jnp.sum(wt * w / (1.0 + w * b))


def weighted_resolvent_trace(mu, delta, w, wt):
    """b_w(mu) by bisection in log b (mu >= 0; mu = 0 needs delta > 1)."""
    # mu(b) > mu means b is too small: the root lies above
    lo, hi = bisect(lambda logb: ~(_mu_of_b(jnp.exp(logb), delta, w, wt) > mu),
                    jnp.asarray(-40.0), jnp.asarray(40.0), _BISECT)
    return jnp.exp(0.5 * (lo + hi))


def weighted_s2(b, delta, w, wt):
    """s2_w = tau((Sigma_w + mu)^{-2}) = -b_w'(mu) = b^2 / (1 - delta b^2 E[w^2/(1 + w b)^2])."""
    return b * b / (1.0 - delta * b * b * jnp.sum(wt * (w / (1.0 + w * b)) ** 2))


def weighted_cross_trace(c, b, delta, w, wt):
    """tau(A B_w) = (b_w(lam) - b_w(mu)) / (mu - lam) for c = b_w(lam), b = b_w(mu), without the
    cancellation of that difference quotient (mu -> lam, e.g. a square sketch with lamT = lam = 0):
    subtracting the two resolvent equations gives (c - b)/(mu - lam) =
    c b / (1 - delta c b E[w^2/((1 + w c)(1 + w b))]), which is s2_w at c = b."""
    return c * b / (1.0 - delta * c * b * jnp.sum(wt * w * w / ((1.0 + w * c) * (1.0 + w * b))))


def weighted_effective_ridge(kappa, lam_trak, delta, w, wt, identity: bool):
    """(mu, b_w(mu)) of (T3) for the weighted Gram: lamT = mu [1 - (1 - mu b)/kappa], solved in b."""
    if identity:
        mu = jnp.asarray(lam_trak, dtype=jnp.float64)
        return mu, weighted_resolvent_trace(mu, delta, w, wt)
    b_max = weighted_resolvent_trace(lam_trak, delta, w, wt)      # mu(b_max) = lamT

    def F(b):
        mu = _mu_of_b(b, delta, w, wt)
        return mu * (1.0 - (1.0 - mu * b) / kappa) - lam_trak     # > 0 for small b, < 0 at b_max

    lo, hi = bisect(lambda logb: ~(F(jnp.exp(logb)) > 0), jnp.asarray(-40.0), jnp.log(b_max), _BISECT)
    b = jnp.exp(0.5 * (lo + hi))
    return _mu_of_b(b, delta, w, wt), b


def weighted_kernel_traces(*, delta, lam, kappa, lam_trak, n_proj, identity: bool, c, tau_A2, w, wt):
    """Traces of the weighted sketched kernel B_w (suffix _w), as `kernel_traces` for B."""
    mu, b = weighted_effective_ridge(kappa, lam_trak, delta, w, wt, identity)
    s2 = weighted_s2(b, delta, w, wt)
    tau_AB = weighted_cross_trace(c, b, delta, w, wt)
    tau_B2, tau_Bbar2 = sketch_second_order(mu, b, s2, kappa, lam_trak, n_proj, identity)
    rho = tau_AB / jnp.sqrt(tau_A2 * tau_Bbar2)
    return dict(mu_w=mu, c_T_w=b, s2_w=s2, tau_AB_w=tau_AB, tau_B2_w=tau_B2, tau_Bbar2_w=tau_Bbar2,
                rho_w=rho)
