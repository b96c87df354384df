r"""Linear datamodeling score (LDS) in the proportional limit (docs/theory.md §10).

Setting (isotropic design). S ranges over uniformly random subsets of the training set of size
alpha n; F(S) = x_0^T beta_hat(S) is the output of the ridge GLM refitted on S; an attribution tau
predicts Pred(S) = sum_{i in S} tau_i. The LDS of a test point is the Spearman correlation of
(Pred(S), F(S)) across subsets.

1. Projection on the mask. For fixed-size subsets, Cov_S(m_i, F) = alpha(1 - alpha) phi_i with
   phi_i = E[F | i in S] - E[F | i not in S] (the datamodel coefficient of i), and sum_i m_i = alpha n,
   so with centred tau (tilde)

       rho(tau) = Corr_S(Pred, F) = Corr_i(tau, phi) * R,   R^2 = alpha (1 - alpha) sum_i phi~_i^2 / Var_S F.

   (Pred, F) are sums of many weak contributions over the subset: jointly Gaussian across S, so
   LDS = (6/pi) arcsin(rho/2) for J -> infinity subsets (Moran's exact mean for finite J:
   `expected_sample_spearman`).

2. The datamodel coefficient. Adding i to a subset S not containing it changes the output by one
   Newton step of the subset fit: F(S + i) - F(S) = -g_i^S x_0^T A_S x_i (1 + o(1)) with
   g_i^S = l'(y_i, prox_{c_alpha l}(z_i^S)), z_i^S = x_i^T beta_hat(S), A_S the inverse Hessian of the
   subset fit. Averaging over S, the subset-specific parts of z_i^S and of x_0^T A_S x_i are
   independent (x_0 is a fresh vector), hence phi_i = -gbar_i ubar_i with ubar_i = x_0^T Abar x_i,
   Abar = E_S A_S, and gbar_i = E_eps[g_i^S] the subset-averaged gradient.

3. Two replicas (subsampling / bagging asymptotics). Fits a, b on weighted data (weights v^a, v^b in
   {0, 1}), cavity fields z^a = (m_a/gamma^2) s + zeta^a with Var zeta^a = r_a^2 (single-replica
   fixed point at n/p = delta alpha_a); the stationarity identity lam beta^a = -X^T V^a g^a and
   Stein's lemma give the cross overlap kappa_ab = Cov(zeta^a, zeta^b) = <beta^a, beta^b>/p - m_a m_b/gamma^2:

       kappa_ab = delta pi_ab c_a c_b E[g^a g^b],   pi_ab = P(v^a = v^b = 1)

   (a = b is (F3)). Two independent subsets: pi = alpha^2 (kappa_12); full fit and one subset:
   pi = alpha (kappa_1a). Then zeta^S = zetabar + eps^S with Var zetabar = kappa_12,
   Var eps^S = r_alpha^2 - kappa_12, Cov(zeta_full, zetabar) = kappa_1a, and Var_S F = r_alpha^2 - kappa_12,
   E[gbar^2] = kappa_12/(delta alpha^2 c_alpha^2).

4. Traces. Two resolvents of the same design with per-sample weights d1, d2 and traces r1, r2:
   tau(R1 R2) = r1 r2 / (1 - delta r1 r2 E[d1 d2/((1 + d1 r1)(1 + d2 r2))]). With
   hbar = E_eps[w^S/(1 + c_alpha w^S)]:

       tau(Abar^2) = c_alpha^2 / (1 - delta alpha^2 c_alpha^2 E[hbar^2])
       tau(A Abar)  = c c_alpha / (1 - delta alpha c c_alpha E[w hbar/(1 + c w)])
       tau(B Abar)  = b c_alpha / (1 - delta alpha b c_alpha E[hbar]/(1 + b))          (b = c_T, B ~ (Sigma + mu)^{-1})
       tau(B_w Abar) = b_w c_alpha / (1 - delta alpha b_w c_alpha E[w hbar/(1 + b_w w)]) (b_w = c_T,w)

5. Assembly: an estimator -t_e V_e (LOO: t = g, V = U; see `prediction`) has
   Corr_i(tau, phi) = E[t_e gbar] Cov(V_e, Ubar) / sqrt(E[t_e^2] Var V_e E[gbar^2] tau(Abar^2)) and
   R^2 = alpha (1 - alpha) delta E[gbar^2] tau(Abar^2) / (r_alpha^2 - kappa_12).
"""

from __future__ import annotations

from functools import lru_cache, partial

import jax.numpy as jnp
import numpy as np

from compilecache import cached_jit
from .solvers import brentq
from .errors import EstimatorDoesNotExistError, NotConvergedError
from .families import Family
from .fixed_point import solve_fixed_point
from .glm_law import _hermite, law_grid

LDS_NODES = (16, 16, 12)        # x1 (zetabar), x2 (the rest of zeta_full), eps: ~1e-8 in the LDS


@lru_cache(maxsize=32)
def _pairs(family: Family, gamma, sigma, nodes):
    """(nu, y, weight) atoms of the law of (s/gamma, y) (the (nu, y) part of `glm_law.law_grid`)."""
    grid = law_grid(family, float(gamma), float(sigma) if family.uses_sigma else 0.0, nodes)
    real = int(np.count_nonzero(grid.weight > 0)) // nodes * nodes
    nu, y = grid.nu[:real:nodes], grid.y[:real:nodes]
    wt = grid.weight[:real].reshape(-1, nodes).sum(axis=1)
    return nu, y, wt / wt.sum()


@cached_jit(static_argnames=("family",))
def _subset_average(y, z_mean, sd_eps, c_alpha, eps, eps_wt, *, family):
    """(gbar, hbar) = E_eps[g, w/(1 + c w)] of a subset fit whose cavity field is z_mean + sd_eps eps."""
    z = z_mean[..., None] + sd_eps * eps
    yb = y[..., None]
    eta = family.prox(yb, z, c_alpha)
    g, w = family.grad(yb, eta), family.hess(yb, eta)
    return jnp.sum(eps_wt * g, -1), jnp.sum(eps_wt * w / (1.0 + c_alpha * w), -1)


@cached_jit(static_argnames=("family",))
def _full_fit(y, z, c, *, family):
    eta = family.prox(y, z, c)
    return family.grad(y, eta), family.hess(y, eta)


class _Law:
    """Quadrature of the joint law of (nu, y, zetabar, zeta_full, eps) for fixed single-replica
    fixed points; the couplings kappa_12, kappa_1a are solved here. Parametrization:
    zetabar = sqrt(kappa_12) x1, zeta_full = (kappa_1a/sqrt(kappa_12)) x1 + sqrt(r^2 - kappa_1a^2/kappa_12) x2,
    so the subset averages (gbar, hbar) depend on (nu, y, x1) only and are computed once per kappa_12."""

    def __init__(self, family, gamma, sigma, full, sub, alpha, delta, nodes):
        n_pair, n1, n2, n3 = nodes, *LDS_NODES
        self.family, self.alpha, self.delta = family, alpha, delta
        self.nu, self.y, self.pw = _pairs(family, gamma, sigma, n_pair)
        self.x1, self.w1 = _hermite(n1)
        self.x2, self.w2 = _hermite(n2)
        self.eps, self.we = (jnp.asarray(v) for v in _hermite(n3))
        self.full, self.sub = full, sub           # FixedPoint of the full fit and of a subset fit
        self.a_full = full.m / gamma if gamma > 0 else 0.0
        self.a_sub = sub.m / gamma if gamma > 0 else 0.0

    def subset_averages(self, kappa12):
        """(gbar, hbar) on the (pair, x1) grid."""
        shape = (self.nu.size, self.x1.size)
        y = np.broadcast_to(self.y[:, None], shape)
        z = self.a_sub * self.nu[:, None] + np.sqrt(kappa12) * self.x1[None, :]
        sd = np.sqrt(max(self.sub.r ** 2 - kappa12, 0.0))
        gbar, hbar = _subset_average(jnp.asarray(y), jnp.asarray(z), sd, self.sub.c, self.eps, self.we,
                                     family=self.family)
        return np.asarray(gbar), np.asarray(hbar)

    def kappa12(self):
        """kappa_12 = delta alpha^2 c_alpha^2 E[gbar^2] on (0, r_alpha^2)."""
        wt = self.pw[:, None] * self.w1[None, :]
        k = self.delta * self.alpha**2 * self.sub.c**2

        def f(kap):
            gbar, _ = self.subset_averages(kap)
            return k * float(np.sum(wt * gbar ** 2)) - kap

        hi = self.sub.r ** 2
        if f(0.0) <= 0:
            return 0.0
        return brentq(f, 0.0, hi, xtol=1e-14 * hi, rtol=1e-12)

    def full_fit(self, kappa12, kappa1a):
        """(weight, g, w) of the full fit on the (pair, x1, x2) grid."""
        r = self.full.r
        b1 = kappa1a / np.sqrt(kappa12) if kappa12 > 0 else 0.0
        zeta = b1 * self.x1[None, :, None] + np.sqrt(max(r * r - b1 * b1, 0.0)) * self.x2[None, None, :]
        shape = (self.nu.size, self.x1.size, self.x2.size)
        y = np.broadcast_to(self.y[:, None, None], shape)
        g, w = _full_fit(jnp.asarray(y), jnp.asarray(self.a_full * self.nu[:, None, None] + zeta), self.full.c,
                         family=self.family)
        wt = self.pw[:, None, None] * self.w1[None, :, None] * self.w2[None, None, :]
        return wt, np.asarray(g), np.asarray(w)

    def kappa1a(self, kappa12, gbar):
        """kappa_1a = delta alpha c c_alpha E[g gbar], |kappa_1a| <= r sqrt(kappa_12)."""
        k = self.delta * self.alpha * self.full.c * self.sub.c
        bound = self.full.r * np.sqrt(kappa12)

        def f(kap):
            wt, g, _ = self.full_fit(kappa12, kap)
            return k * float(np.sum(wt * g * gbar[:, :, None])) - kap

        if bound == 0.0:
            return 0.0
        lo, hi = -bound, bound
        if f(lo) < 0 or f(hi) > 0:
            raise NotConvergedError("the full-fit/subset-fit overlap of the LDS theory has no root.")
        return brentq(f, lo, hi, xtol=1e-14 * bound, rtol=1e-12)


@lru_cache(maxsize=16)
def _two_replica(family: Family, delta, lam, gamma, sigma, alpha, full, nodes):
    """The subset fixed point, kappa_12, kappa_1a and the law on the (pair, x1, x2) grid (cached:
    they do not depend on TRAK's parameters)."""
    try:
        sub, _ = solve_fixed_point(family, delta * alpha, lam, gamma, sigma)
    except EstimatorDoesNotExistError:
        raise EstimatorDoesNotExistError(
            f"the subset fits of the LDS do not exist at n/p = lds_alpha * delta = {delta * alpha:g} with lam = 0 "
            f"(it needs n/p > 1 and, for logistic, non-separable data); use lam > 0 or a larger lds_alpha.") from None
    law = _Law(family, gamma, sigma, full, sub, alpha, delta, nodes)
    k12 = law.kappa12()
    gbar, hbar = law.subset_averages(k12)
    k1a = law.kappa1a(k12, gbar)
    wt, g, w = law.full_fit(k12, k1a)
    for a in (wt, g, w, gbar, hbar):
        a.flags.writeable = False
    return sub, k12, k1a, wt, g, w, gbar[:, :, None], hbar[:, :, None]


def lds_constants(*, family: Family, delta, lam, gamma, sigma, alpha, full, c_T, c_T_w=None, nodes=20) -> dict:
    """Two-replica constants and the law moments the LDS needs (module docstring, 3-4)."""
    sub, k12, k1a, wt, g, w, gbar, hbar = _two_replica(family, float(delta), float(lam), float(gamma),
                                                       float(sigma), float(alpha), full, int(nodes))
    E = lambda f: float(np.sum(wt * f))  # noqa: E731
    c, ca = full.c, sub.c
    t = g / (1.0 + c * w)
    tw = None if c_T_w is None else g / (1.0 + c_T_w * w)
    out = dict(e_g2=E(g * g), e_t2=E(t * t), c_alpha=ca, m_alpha=sub.m, r_alpha=sub.r, kappa_12=k12, kappa_1a=k1a,
               var_F=sub.r ** 2 - k12, e_gbar2=E(gbar * gbar), e_g_gbar=E(g * gbar), e_t_gbar=E(t * gbar),
               e_hbar=E(hbar), e_hbar2=E(hbar * hbar))
    out["tau_Abar2"] = ca * ca / (1.0 - delta * alpha**2 * ca * ca * out["e_hbar2"])
    out["tau_AAbar"] = c * ca / (1.0 - delta * alpha * c * ca * E(w * hbar / (1.0 + c * w)))
    out["tau_BAbar"] = c_T * ca / (1.0 - delta * alpha * c_T * ca * out["e_hbar"] / (1.0 + c_T))
    if c_T_w is not None:
        out["e_tw_gbar"], out["e_tw2"] = E(tw * gbar), E(tw * tw)
        out["tau_BwAbar"] = c_T_w * ca / (1.0 - delta * alpha * c_T_w * ca * E(w * hbar / (1.0 + c_T_w * w)))
    out["R2"] = alpha * (1.0 - alpha) * delta * out["e_gbar2"] * out["tau_Abar2"] / out["var_F"]
    return out


def lds_from_rho(rho):
    """Population Spearman of a bivariate normal pair with correlation rho: (6/pi) arcsin(rho/2)."""
    return 6.0 / np.pi * np.arcsin(np.asarray(rho) / 2.0)


def expected_sample_spearman(rho, n_subsets: int):
    """Mean Spearman correlation of n_subsets bivariate normal draws with correlation rho (Moran 1948):
    6/(pi (J + 1)) [arcsin(rho) + (J - 2) arcsin(rho/2)]."""
    J = n_subsets
    rho = np.asarray(rho)
    return 6.0 / (np.pi * (J + 1)) * (np.arcsin(rho) + (J - 2) * np.arcsin(rho / 2.0))


def lds_rho(e_tg, cov, e_tt, var_v, k: dict):
    """Corr_S(Pred, F) of an estimator -t_e V_e (module docstring, 5)."""
    corr = e_tg * cov / np.sqrt(e_tt * var_v * k["e_gbar2"] * k["tau_Abar2"])
    return corr * np.sqrt(k["R2"])


def lds_predictions(*, family: Family, delta, lam, gamma, sigma, alpha, full, constants, variants: bool,
                    n_subsets: int | None = None) -> tuple[dict, dict]:
    """({estimator: LDS}, constants) for exact LOO and every estimator of the registry (the variants
    with variants=True; each one's `Estimator.lds`), from the full-fit fixed point `full` and the
    traces of `prediction` (`constants`). n_subsets = J gives
    the expected sample Spearman over J subsets, None its J -> infinity limit."""
    C = constants
    k = lds_constants(family=family, delta=delta, lam=lam, gamma=gamma, sigma=sigma, alpha=alpha, full=full,
                      c_T=C["c_T"], c_T_w=C.get("c_T_w") if variants else None)
    from .estimators import REGISTRY, estimators_for

    rho = {name: lds_rho(*REGISTRY[name].lds(k, C), k) for name in ("loo",) + estimators_for(variants)}
    f = lds_from_rho if n_subsets is None else partial(expected_sample_spearman, n_subsets=n_subsets)
    return {e: float(f(r)) for e, r in rho.items()}, {"lds_" + key: float(v) for key, v in
                                                      {**k, **{f"rho_{e}": r for e, r in rho.items()}}.items()}
