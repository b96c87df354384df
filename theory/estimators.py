"""The influence estimators, each defined once (`REGISTRY`): its simulation formula, its theory in
every model where it has one, its label and colour, and where it is reported.

Every consumer iterates over the registry: `sims.engine` (simulation), `theory.prediction`
(isotropic and general-covariance theory), `theory.lds` (the LDS), `theory.conditional` (the theory
conditional on a user's data), `sims.runs.plan`, `sims.network`, `sims.runs.compare` and the figures.
A new estimator is one `Estimator` here (docs/theory.md §12).

Notation (docs/conventions.md): influence of including training point i on the test output,
A = H^{-1}; K = P (P^T X^T X P + lamT I)^{-1} P^T and K_w the same with X^T diag(w) X; M projections
averaged (P_m independent, the same P_m for every sketched estimator of one simulation):

    if         -x0^T A x_i g_i
    ns         IF_i / (1 - w_i h_i),  h_i = x_i^T A x_i                     (Newton step = ALO)
    trak       -x0^T K x_i g_i
    tracin     -x0^T P P^T x_i g_i                                           (gradient similarity)
    trak_lev   trak_i / (1 - h_i),  h_i = phi_i^T (Phi^T Phi + lamT)^{-1} phi_i
    trak_w     -x0^T K_w x_i g_i
    trak_wlev  trak_w_i / (1 - w_i h^w_i)
    loo        exact LOO itself (scored only by the LDS)

Limit theory (isotropic and general covariance share it): across training points an estimator is
-t_e V_e with V_e centered Gaussian (`Limit`): its weight t_e on the atoms of the law of (g, w),
Var V_e and Cov(V_e, U) (U: LOO's) from the traces, and how its Spearman is computed. TracIn is
TRAK's lamT -> infinity limit after rescaling by lamT: K lamT -> P P^T, so c_T -> 0, tau(A B) lamT ->
tau(A P Pbar^T) = tau(A) (first order, E P P^T = I) and tau(B_bar^2) lamT^2 -> tau(Pbar^2) =
tau(Sigma^2) + 1/(kappa M) (`traces.sum_kernel_traces`, for both covariance models).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


# ------------------------------------------------------------------------ simulation pieces
def kernel_scores(Phi, Phi0, lam_trak):
    """Phi_0 (Phi^T Phi + lamT I)^{-1} Phi^T, solving against the T test rows first."""
    G = Phi.T @ Phi + lam_trak * jnp.eye(Phi.shape[1], dtype=Phi.dtype)
    Z = jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(G), True), Phi0.T)
    return Z.T @ Phi.T


def kernel_and_leverage(Phi, Phi0, lam_trak, weights=None):
    """(Phi_0 G^{-1} Phi^T, h) with G = Phi^T diag(v) Phi + lamT I and h_i = phi_i^T G^{-1} phi_i."""
    v = jnp.ones(Phi.shape[0], Phi.dtype) if weights is None else weights
    G = (Phi.T * v) @ Phi + lam_trak * jnp.eye(Phi.shape[1], dtype=Phi.dtype)
    L = jnp.linalg.cholesky(G)
    Z = jax.scipy.linalg.cho_solve((L, True), jnp.concatenate([Phi0, Phi], axis=0).T)   # G^{-1} [Phi0; Phi]^T
    T = Phi0.shape[0]
    return Z[:, :T].T @ Phi.T, jnp.sum(Z[:, T:].T * Phi, axis=1)


def gradient_similarity(Phi, Phi0, lam_trak):
    """Phi_0 Phi^T (no kernel inverse; lamT unused)."""
    return Phi0 @ Phi.T


class Parts:
    """The per-projection pieces of the corrected variants, computed on first use:
    S, h (`kernel_and_leverage` of the plain Gram), Sw, hw (of the weighted Gram), G (`gradient_similarity`)."""

    def __init__(self, Phi, Phi0, w, lam_trak):
        self._args, self._cache = (Phi, Phi0, w, lam_trak), {}

    def __getitem__(self, key):
        if key not in self._cache:
            Phi, Phi0, w, lam_trak = self._args
            if key in ("S", "h"):
                self._cache["S"], self._cache["h"] = kernel_and_leverage(Phi, Phi0, lam_trak)
            elif key in ("Sw", "hw"):
                self._cache["Sw"], self._cache["hw"] = kernel_and_leverage(Phi, Phi0, lam_trak, w)
            else:
                self._cache["G"] = gradient_similarity(Phi, Phi0, lam_trak)
        return self._cache[key]


# ----------------------------------------------------------------------------- limit theory
class Law(NamedTuple):
    """The discrete limit law of a training point: atoms g, w with weights wt, and IF's t = g/(1 + c w)."""

    g: object
    w: object
    wt: object
    t: object


class Limit(NamedTuple):
    """An estimator -t_e V_e of the limit law: weights t_e on the atoms, Var V_e, Cov(V_e, U), and
    how its Spearman is computed: "gg" (t_e = g: `spearman.spearman_trak` at rho = Cov/sqrt(Var U
    Var V)), "pair" (`spearman.spearman_pair`), "if" (IF's own routine), or "=name" (the value of
    another estimator, equal by construction)."""

    t: object
    var: object
    cov: object
    spearman: str
    rho: object = None       # Cov/sqrt(Var U Var V) when the traces carry it (the same float as theirs)


class Kernel(NamedTuple):
    """The kernel of a sketched estimator in the conditional theory (`theory.conditional`): the Gram
    it sketches ("plain" X^T X, "weighted" X^T diag(w) X, or "sum": no Gram, the kernel P P^T) and its
    leave-one-out factor (None, "plain" 1/(1 - h_i) or "weighted" 1/(1 - w_i h_i))."""

    gram: str
    leverage: str | None


def _trak_limit(law, tr, tw):
    return Limit(law.g / (1.0 + tr["c_T"]), tr["tau_Bbar2"], tr["tau_AB"], "gg", tr["rho"])


# ----------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class Estimator:
    """One influence estimator (module docstring).

    group: "core" (always simulated and predicted), "variant" (with variants=True), "reference"
    (exact LOO, scored only by the LDS).
    theory: "any" (predicted for every covariance), "isotropic" or "none".
    engine: how a simulation computes it: "ridge" (from H^{-1}: IF, NS), "projected" (the average
    over M projections of `projected(Phi, Phi0, lamT)` times -g: TRAK and TracIn on the core path),
    "variant" (the average over M projections of `variant(parts, g, w)`, `Parts`), or None.
    limit(law, tr, tw): its `Limit` (tr: the plain kernel's traces with the sum kernel's, tw: the
    weighted kernel's or None); None: no limit theory (NS: it is LOO's limit).
    lds(k, C): (E[t gbar], Cov(V, Abar U), E[t^2], Var V) of `theory.lds` from its constants k and
    the prediction's constants C.
    conditional: the kernel of the conditional theory (`theory.conditional.Kernel`), "exact" for
    IF and NS (computed on the data), None.
    """

    name: str
    label: str
    color: str
    group: str
    theory: str
    engine: str | None = None
    projected: Callable | None = None
    variant: Callable | None = None
    limit: Callable | None = None
    lds: Callable | None = None
    conditional: object = None
    needs_weighted: bool = False        # its theory needs the weighted kernel's traces (tw)
    dashed: bool = False                # plotted dashed (the leave-one-out factor variants)


def _registry():
    return {e.name: e for e in (
        Estimator("if", "IF", "#d95f02", "core", "any", engine="ridge",
                  limit=lambda law, tr, tw: Limit(law.t, tr["tau_A2"], tr["tau_A2"], "if"),
                  lds=lambda k, C: (k["e_t_gbar"], k["tau_AAbar"], k["e_t2"], C["tau_A2"]),
                  conditional="exact"),
        Estimator("ns", "NS (ALO)", "#1b9e77", "core", "any", engine="ridge",
                  lds=lambda k, C: (k["e_g_gbar"], k["tau_AAbar"], k["e_g2"], C["tau_A2"]),
                  conditional="exact"),
        Estimator("trak", "TRAK", "#7570b3", "core", "any", engine="projected", projected=kernel_scores,
                  variant=lambda parts, g, w: -parts["S"] * g, limit=_trak_limit,
                  lds=lambda k, C: (k["e_g_gbar"], k["tau_BAbar"], k["e_g2"], C["tau_Bbar2"]),
                  conditional=Kernel("plain", None)),
        Estimator("tracin", "TracIn", "#e6ab02", "core", "any", engine="projected",
                  projected=gradient_similarity, variant=lambda parts, g, w: -parts["G"] * g,
                  limit=lambda law, tr, tw: Limit(law.g, tr["tau_P2"], tr["tau_AP"], "gg"),
                  lds=lambda k, C: (k["e_g_gbar"], k["c_alpha"], k["e_g2"], C["tau_P2"]),
                  conditional=Kernel("sum", None)),
        Estimator("trak_lev", "TRAK + LOO factor", "#a6761d", "variant", "any", engine="variant",
                  variant=lambda parts, g, w: -parts["S"] * g / (1.0 - parts["h"]),
                  limit=lambda law, tr, tw: Limit(law.g, tr["tau_Bbar2"], tr["tau_AB"], "=trak"),
                  lds=lambda k, C: (k["e_g_gbar"], k["tau_BAbar"], k["e_g2"], C["tau_Bbar2"]),
                  conditional=Kernel("plain", "plain"), dashed=True),
        Estimator("trak_w", "TRAK, weighted Gram", "#e7298a", "variant", "any", engine="variant",
                  variant=lambda parts, g, w: -parts["Sw"] * g,
                  limit=lambda law, tr, tw: Limit(law.g / (1.0 + law.w * tw["c_T_w"]), tw["tau_Bbar2_w"],
                                                  tw["tau_AB_w"], "pair", tw["rho_w"]),
                  lds=lambda k, C: (k["e_tw_gbar"], k["tau_BwAbar"], k["e_tw2"], C["tau_Bbar2_w"]),
                  conditional=Kernel("weighted", None), needs_weighted=True),
        Estimator("trak_wlev", "TRAK, weighted Gram + ALO factor", "#66a61e", "variant", "any", engine="variant",
                  variant=lambda parts, g, w: -parts["Sw"] * g / (1.0 - w * parts["hw"]),
                  limit=lambda law, tr, tw: Limit(law.g, tw["tau_Bbar2_w"], tw["tau_AB_w"], "gg", tw["rho_w"]),
                  lds=lambda k, C: (k["e_g_gbar"], k["tau_BwAbar"], k["e_g2"], C["tau_Bbar2_w"]),
                  conditional=Kernel("weighted", "weighted"), needs_weighted=True, dashed=True),
        Estimator("loo", "exact LOO", "#444444", "reference", "none",
                  lds=lambda k, C: (k["e_g_gbar"], k["tau_AAbar"], k["e_g2"], C["tau_A2"])),
    )}


REGISTRY: dict[str, Estimator] = _registry()


def estimator_group(group: str) -> tuple[str, ...]:
    """Names of the registered estimators of one group, in registry order."""
    return tuple(name for name, e in REGISTRY.items() if e.group == group)


def estimators_for(variants: bool) -> tuple[str, ...]:
    """The estimators a prediction or simulation reports: the core ones, and the variants if asked."""
    return estimator_group("core") + (estimator_group("variant") if variants else ())


PREDICTED = tuple(name for name, e in REGISTRY.items() if e.theory != "none")
SKETCHED = tuple(name for name, e in REGISTRY.items() if e.engine in ("projected", "variant"))
CONDITIONAL = tuple(name for name, e in REGISTRY.items() if e.conditional not in (None, "exact"))
