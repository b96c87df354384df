r"""General feature covariance: fixed point and traces (docs/theory.md §7).

x_i ~ N(0, Sigma), Sigma = V diag(s) V^T / p with (1/p) sum_j s_j = 1; beta* = V b with
b_j ~ N(0, gamma^2 theta_j), (1/p) sum_j s_j theta_j = 1 (`theory.covariance`); V = I without
loss of generality (Gaussian design and sketch are rotation invariant). D = diag(s).

Fixed point (same limit law of (s, z, eta, g, w) as in the isotropic case, m = beta*^T Sigma beta_hat,
q = beta_hat^T Sigma beta_hat = m^2/gamma^2 + r^2), with a_w = E[w/(1 + c w)],
mhat = -delta (E[s g] - m a_w)/gamma^2 and alpha_j = 1/(lam + delta a_w s_j):

    (G1)  c = tr(Sigma A) = (1/p) sum_j s_j alpha_j
    (G2)  m = mhat gamma^2 (1/p) sum_j theta_j s_j^2 alpha_j
    (G3)  q = (1/p) sum_j [mhat^2 gamma^2 theta_j s_j^3 + delta E[g^2] s_j^2] alpha_j^2

i.e. beta_hat ~ (lam + delta a_w D)^{-1}(mhat D beta* + sqrt(delta E g^2) D^{1/2} zeta) (Gaussian
covariate model). s = theta = 1 gives (F1)-(F3). Gaussian family: a_w = 1/(1 + c), closed form.

Traces (all "tau" constants are p tr(Sigma M Sigma M'), = tau(M M') when s = 1). First order
X^T W X -> delta a_w D, X^T X -> delta D/(1 + c_T); r_j = 1/(mu + delta s_j/(1 + c_T)),
c_T(mu) = (1/p) sum s_j r_j. Second order, for two resolvents of the same design with diagonal
equivalents x, y and per-sample weight e:

    T[m1, m2; x, y, e] = sum m1 m2 x y + e delta [sum m1 s x y][(1/p) sum m2 s x y] / (1 - e delta (1/p) sum s^2 x y)

    (T2')  tau_A2 = S_AA/(1 - delta e2 S_AA),  S_AA = (1/p) sum s^2 alpha^2, e2 = E[w^2/(1 + c w)^2]
    (T3')  lamT = mu [1 - (delta/kappa) c_T(mu)/(1 + c_T(mu))]  (P = I: mu = lamT; lamT = 0:
           c_T = kappa/(delta - kappa), mu solves (1/p) sum s/(mu + (delta - kappa) s) = kappa/(delta - kappa))
    (T4')  c_T = c_T(mu)
    (T5')  tau_AB = S_AR/(1 - delta a_w/(1 + c_T) S_AR),  S_AR = (1/p) sum s^2 alpha r
    (T6')  s2 = S_RR/(1 - delta S_RR/(1 + c_T)^2),  S_RR = (1/p) sum s^2 r^2
    (T7')  tau_B2 = s2 + mu^2 tr(Sigma R^2)^2 / (kappa - 1 + 2 mu tau(R) - mu^2 tau(R^2))   (P random)
    (T8')  tau_Bbar2 = tau_B2/M + (1 - 1/M) s2

Effective dimensions: ell_A = lam/(delta a_w) (the population ridge of A), d_A = sum s/(s + ell_A);
ell_T = mu (1 + c_T)/delta (the sketch's), d_T = sum s/(s + ell_T) (= k when lamT = 0).
Derived and checked numerically (each trace within 4.5% of one draw at p = 1000-2000; predictions
against exact LOO at p = 400-800) by a study summarized in docs/theory.md §7.
"""

from __future__ import annotations

from functools import partial

import jax.numpy as jnp
import numpy as np

from compilecache import cached_jit
from .errors import NotConvergedError
from .families import Family
from .fixed_point import FixedPoint, solve_fixed_point
from .glm_law import DEFAULT_NODES, atoms, quadrature
from .shapes import bucket
from .solvers import bracket_root, brentq, damped_newton_root


TOL = 1e-12


def _residual(x, s, theta, p, family, grid, delta, lam, gamma):
    """(G1)-(G3) in x = (log c, m/gamma, log r). s and theta may be padded with zeros past the
    spectrum's p entries: every sum below has a factor s, so the means are the sums over p."""
    logc, a, logr = x
    c, r = jnp.exp(logc), jnp.exp(logr)
    nu, _, g, w, wt = atoms(grid, family, c, a, r)
    a_w = jnp.sum(wt * w / (1.0 + c * w))
    e_g2 = jnp.sum(wt * g * g)
    h = jnp.sum(wt * nu * g) - a * a_w                     # = -mhat gamma / delta
    alpha = 1.0 / (lam + delta * a_w * s)
    c_rhs = jnp.sum(s * alpha) / p
    a_rhs = -delta * h * jnp.sum(theta * s * s * alpha) / p   # m / gamma
    q_rhs = jnp.sum((delta**2 * h * h * theta * s**3 + delta * e_g2 * s * s) * alpha * alpha) / p
    return jnp.stack([logc - jnp.log(c_rhs),
                      (a - a_rhs) / jnp.sqrt(1.0 + a * a + a_rhs * a_rhs),   # smooth at a = 0 (gamma = 0)
                      jnp.log(a * a + r * r) - jnp.log(q_rhs)])


@cached_jit(static_argnames=("family",))
def _newton(x0, grid, s, theta, p, delta, lam, gamma, *, family):
    """(x, max|F|, status) of `solvers.damped_newton_root` on (G1)-(G3)."""
    F = partial(_residual, s=s, theta=theta, p=p, family=family, grid=grid, delta=delta, lam=lam, gamma=gamma)
    return damped_newton_root(F, x0, tol=TOL, max_steps=60)


def _padded(v):
    """v with zeros appended up to a power of 2 (`shapes.bucket`, at least 64): spectra of nearby
    sizes share one compiled `_newton`."""
    return np.concatenate([v, np.zeros(bucket(v.size, minimum=64, per_octave=1) - v.size)])


def solve_fixed_point_general(family: Family, s, theta, delta, lam, gamma, sigma, nodes=DEFAULT_NODES):
    """(G1)-(G3): returns (FixedPoint, x = (log c, m/gamma, log r), E[g^2] for gaussian else None).

    Damped Newton from the isotropic solution; if it fails, homotopy in the spectrum
    s_t = 1 + t(s - 1) (theta likewise, renormalized) from t = 0 to 1.
    """
    s, theta = np.asarray(s, float), np.asarray(theta, float)
    closed = family.closed_form
    if closed is not None:
        fp, e_g2 = closed.fixed_point_general(s, theta, delta, lam, gamma, sigma)
        fp = FixedPoint(*fp)
        return fp, np.array([np.log(fp.c), fp.m / gamma if gamma > 0 else 0.0, np.log(max(fp.r, 1e-300))]), e_g2
    grid = quadrature(family, gamma, sigma, nodes)
    _, x_iso = solve_fixed_point(family, delta, lam, gamma, sigma, nodes=nodes)

    def attempt(x, s_t, th_t):
        x, res, _ = _newton(jnp.asarray(x), grid, _padded(s_t), _padded(th_t), float(s_t.size), delta, lam,
                            gamma, family=family)
        return np.asarray(x), float(res)

    x, res = attempt(x_iso, s, theta)
    if not res <= TOL:
        x, t, step = np.asarray(x_iso), 0.0, 0.25
        while t < 1.0:
            tn = min(1.0, t + step)
            s_t = 1.0 + tn * (s - 1.0)
            th_t = 1.0 + tn * (theta - 1.0)
            xn, rn = attempt(x, s_t, th_t / np.mean(s_t * th_t))
            if rn <= TOL:
                x, t, step = xn, tn, min(2 * step, 0.5)
            else:
                step /= 4
                if step < 1e-4:
                    raise NotConvergedError(
                        f"the {family.name} fixed point with this covariance did not converge (homotopy stalled at t = {t:.3f}).")
    c, a, r = float(np.exp(x[0])), float(x[1]), float(np.exp(x[2]))
    return FixedPoint(c, a * gamma, r, a * a + r * r), x, None


def _second_order(s, delta, m1, m2, x, y, e):
    num = e * delta * np.sum(m1 * s * x * y) * np.mean(m2 * s * x * y)
    return np.sum(m1 * m2 * x * y) + num / (1.0 - e * delta * np.mean(s * s * x * y))


def _c_T(s, delta, mu):
    """c_T = tr(Sigma (X^T X + mu)^{-1}): c = (1/p) sum s/(mu + delta s/(1 + c)) (mu = 0 needs delta > 1)."""
    if mu <= 0:
        return 1.0 / (delta - 1.0)
    f = lambda c: c - np.mean(s / (mu + delta * s / (1.0 + c)))  # noqa: E731
    return brentq(f, 0.0, 1.0 / mu + 1.0, xtol=1e-300, rtol=1e-15)


def effective_ridge_general(s, delta, kappa, lam_trak, identity: bool) -> float:
    """mu of (T3')."""
    if identity:
        return float(lam_trak)
    if lam_trak == 0.0:
        if kappa >= 1.0:
            return 0.0                       # kappa = 1 < delta: B = (X^T X)^{-1}
        target = kappa / (delta - kappa)
        pos = s[s > 0]                       # s = 0 contributes 0 for every mu > 0 (and as mu -> 0)
        f = lambda mu: np.sum(pos / (mu + (delta - kappa) * pos)) / s.size - target  # noqa: E731
        return bracket_root(f, 0.0, 1.0, sign_at_lo=1, grow=4.0)

    def F(mu):
        c = _c_T(s, delta, mu)
        return mu * (1.0 - (delta / kappa) * c / (1.0 + c)) - lam_trak

    return bracket_root(F, lam_trak, lam_trak + (1.0 + delta / kappa) * (1.0 + lam_trak), sign_at_lo=-1)


def _sketch_traces(s, delta, r, e_rr, mu, kappa, n_proj, identity: bool):
    """(s2, tau(B^2), tau(Bbar^2)) of a sketched resolvent with diagonal r = 1/(mu + delta a s) and
    per-sample weight e_rr: s2 = S_rr/(1 - delta e_rr S_rr), (T7') for tau(B^2) (= s2 when P = I or
    mu = 0), tau(Bbar^2) = tau(B^2)/M + (1 - 1/M) s2."""
    p = s.size
    S_rr = np.mean(s * s * r * r)
    s2 = S_rr / (1.0 - delta * e_rr * S_rr)
    if identity or mu == 0.0:
        tau_B2 = s2
    else:
        ones = np.ones(p)
        tau_R2 = _second_order(s, delta, ones, ones, r, r, e_rr) / p
        t_SR2 = _second_order(s, delta, s / p, ones, r, r, e_rr)
        tau_B2 = s2 + mu * mu * t_SR2**2 / (kappa - 1.0 + 2.0 * mu * np.mean(r) - mu * mu * tau_R2)
    return s2, tau_B2, tau_B2 / n_proj + (1.0 - 1.0 / n_proj) * s2


def kernel_traces_general(*, s, delta, lam, kappa, lam_trak, n_proj, identity, c, e_w_w, e_w2_w2) -> dict:
    """(T2')-(T8') and the effective dimensions, with the keys of `traces.kernel_traces`."""
    s = np.asarray(s, float)
    a_w = e_w_w
    alpha = 1.0 / (lam + delta * a_w * s)
    S_AA = np.mean(s * s * alpha * alpha)
    tau_A2 = S_AA / (1.0 - delta * e_w2_w2 * S_AA)
    mu = effective_ridge_general(s, delta, kappa, lam_trak, identity)
    c_T = _c_T(s, delta, mu)
    r = 1.0 / (mu + delta * s / (1.0 + c_T))
    eR = 1.0 / (1.0 + c_T) ** 2
    S_AR = np.mean(s * s * alpha * r)
    tau_AB = S_AR / (1.0 - delta * a_w / (1.0 + c_T) * S_AR)
    s2, tau_B2, tau_Bbar2 = _sketch_traces(s, delta, r, eR, mu, kappa, n_proj, identity)
    ell_A, ell_T = lam / (delta * a_w), mu * (1.0 + c_T) / delta
    from .traces import sum_kernel_traces

    return dict(tau_A2=tau_A2, mu=mu, c_T=c_T, s2=s2, tau_AB=tau_AB, tau_B2=tau_B2, tau_Bbar2=tau_Bbar2,
                rho=tau_AB / np.sqrt(tau_A2 * tau_Bbar2), ell_A=ell_A, ell_T=ell_T,
                d_A=float(np.sum(s / (s + ell_A))), d_T=float(np.sum(s / (s + ell_T))),
                rho_inf=tau_AB / np.sqrt(tau_A2 * s2),
                **sum_kernel_traces(float(np.mean(s * s * alpha)), float(np.mean(s * s)), kappa, n_proj, identity))


# ------------------------------------------------------------------ weighted (Hessian) kernels
# The corrected variants (docs/theory.md §5) sketch the weighted Gram Sigma_w = X^T diag(w) X.
# Its resolvent has the diagonal equivalent (Sigma_w + mu)^{-1} ~ diag(r_w), with
#     r_w,j = 1/(mu + delta a(mu) s_j),  a(mu) = E[w/(1 + w c_w(mu))],  c_w(mu) = (1/p) sum_j s_j r_w,j
# ((G1) at ridge mu; c_w(lam) = c). A sketch of any Gram matrix G acts as the ridge mu solving
# lamT = mu [1 - df(mu)/k], df = tr(G (G + mu)^{-1}); for G = Sigma_w, df/p = delta a(mu) c_w(mu)
# (for G = X^T X this is (T3')). Second-order traces follow the rule of the module docstring with
# the per-sample weight e = E[d1 d2/((1 + d1 c1)(1 + d2 c2))] of the two resolvents.

def _weighted_c(s, delta, mu, w, wt):
    """(c_w(mu), a(mu)): c = (1/p) sum s/(mu + delta E[w/(1 + w c)] s), by bisection on log c
    (the right side decreases in c); mu = 0 needs delta E[w c/(1 + w c)] -> 1 to have a root."""
    def gap(logc):
        c = np.exp(logc)
        a = np.sum(wt * w / (1.0 + w * c))
        return np.mean(s / (mu + delta * a * s)) - c

    lo, hi = -60.0, 60.0
    if gap(lo) <= 0 or gap(hi) >= 0:
        raise NotConvergedError("the weighted resolvent trace has no root at this ridge.")
    logc = brentq(gap, lo, hi, xtol=1e-14, rtol=1e-15)
    c = float(np.exp(logc))
    return c, float(np.sum(wt * w / (1.0 + w * c)))


def weighted_effective_ridge_general(s, delta, kappa, lam_trak, w, wt, identity: bool) -> float:
    """mu_w: lamT = mu [1 - delta a(mu) c_w(mu)/kappa] (P random, mu >= lamT), mu = lamT (P = I);
    lamT = 0 and kappa >= 1: mu = 0 (B_w = Sigma_w^{-1})."""
    if identity or (lam_trak == 0.0 and kappa >= 1.0):
        return float(lam_trak)

    def F(mu):
        c, a = _weighted_c(s, delta, mu, w, wt)
        return mu * (1.0 - delta * a * c / kappa) - lam_trak

    lo = lam_trak if lam_trak > 0 else 1e-300
    if lam_trak == 0.0:          # F < 0 just above 0 (df -> min(1, delta E[1{w > 0}]) > kappa)
        lo = 1e-12
        while F(lo) > 0:
            lo /= 100.0
    return bracket_root(F, lo, lam_trak + (1.0 + delta / kappa) * (1.0 + lam_trak) * (1.0 + np.max(s)), sign_at_lo=-1)


def weighted_kernel_traces_general(*, s, delta, lam, kappa, lam_trak, n_proj, identity, c, tau_A2, w, wt) -> dict:
    """Traces of the sketched weighted kernel B_w = P (P^T Sigma_w P + lamT)^{-1} P^T under a general
    spectrum, keys of `traces.weighted_kernel_traces`:

        c_T,w     = tr(Sigma B_w) = c_w(mu_w)
        tau_AB_w  = S_Ar/(1 - delta e_Ar S_Ar),  S_Ar = (1/p) sum s^2 alpha r_w,  e_Ar = E[w^2/((1 + c w)(1 + c_T,w w))]
        s2_w      = S_rr/(1 - delta e_rr S_rr),  S_rr = (1/p) sum s^2 r_w^2,    e_rr = E[w^2/(1 + c_T,w w)^2]
        tau_B2_w  = (T7') with r_w and e_rr;   tau_Bbar2_w = tau_B2_w/M + (1 - 1/M) s2_w
    (s = 1: the isotropic `traces.weighted_kernel_traces`.)"""
    s, w, wt = np.asarray(s, float), np.asarray(w, float), np.asarray(wt, float)
    try:
        return _weighted_kernel_traces_general(s, delta, lam, kappa, lam_trak, n_proj, identity, c, tau_A2, w, wt)
    except (ValueError, ZeroDivisionError, FloatingPointError, OverflowError):
        raise NotConvergedError("the weighted kernel traces under this covariance did not converge "
                                "(no root of the effective-ridge equation).") from None


def _weighted_kernel_traces_general(s, delta, lam, kappa, lam_trak, n_proj, identity, c, tau_A2, w, wt):
    a_lam = float(np.sum(wt * w / (1.0 + c * w)))
    alpha = 1.0 / (lam + delta * a_lam * s)
    mu = weighted_effective_ridge_general(s, delta, kappa, lam_trak, w, wt, identity)
    c_T, a_mu = _weighted_c(s, delta, mu, w, wt)
    r = 1.0 / (mu + delta * a_mu * s)
    e_Ar = float(np.sum(wt * w * w / ((1.0 + c * w) * (1.0 + c_T * w))))
    e_rr = float(np.sum(wt * (w / (1.0 + c_T * w)) ** 2))
    S_Ar = np.mean(s * s * alpha * r)
    tau_AB = S_Ar / (1.0 - delta * e_Ar * S_Ar)
    s2, tau_B2, tau_Bbar2 = _sketch_traces(s, delta, r, e_rr, mu, kappa, n_proj, identity)
    return dict(mu_w=mu, c_T_w=c_T, s2_w=s2, tau_AB_w=tau_AB, tau_B2_w=tau_B2, tau_Bbar2_w=tau_Bbar2,
                rho_w=tau_AB / np.sqrt(tau_A2 * tau_Bbar2))
