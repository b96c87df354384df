"""GLM families, each defined once (one module per family) and used by both `theory` and `sims`.

Notation (docs/conventions.md): linear predictor eta = x^T beta, signal s = x^T beta*, loss
l(y, eta) with derivatives in eta, g = l'(y, eta), w = l''(y, eta):

    gaussian  l = (y - eta)^2 / 2                              y = s + sigma * eps
    logistic  l = log(1 + e^eta) - y eta                       y ~ Bernoulli(sigmoid(s))
    poisson   l = e^eta - y eta                                y ~ Poisson(e^s)
    probit    l = -y log Phi(eta) - (1 - y) log Phi(-eta)      y ~ Bernoulli(Phi(s))

The proximal map prox_{c l(y, .)}(z) is the root eta of eta + c l'(y, eta) = z (c > 0); its
derivative (implicit function theorem) is d eta = (dz - g dc - c l'_y dy) / (1 + c w), with
l'_y = d l'/dy (= -1 for the canonical families).

A `Family` carries everything family-specific: loss and derivatives, prox, sampler, the law of
y | s and its quadrature table, the curvature scale that starts the fixed point, the signal cap,
whether sigma applies, the closed-form (quadratic) case, and the existence conditions without a
ridge (separability). Nothing outside this package branches on a family's name. A new family is
one module here defining `FAMILY`; it is registered by discovery.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from compilecache import cached_jit
from ..errors import InvalidParameterError

_PROX_MAX_ITERS = 100


@dataclass(frozen=True)
class Family:
    """One GLM family (pure jax.numpy functions broadcasting over their array arguments).

      loss(y, eta), grad(y, eta) = l', hess(y, eta) = l'', prox(y, z, c),
      sample(key, s, sigma) -> y given the signal s = x^T beta*,
      response_law(s, sigma, support) -> (y_values, probs), a trailing axis enumerating the
        support of y | s (Gauss–Hermite in the noise for gaussian, exact otherwise);
      response_table(s, sigma, nodes) -> numpy (y, probs), one row per signal node s, the
        discrete law used by the theory's quadrature (`theory.glm_law`);
      support: "real", "binary" ({0, 1}) or "count" (0, 1, 2, ...), checked by `label_problem`;
      curvature(gamma): a typical E[w], the scale of the fixed point's starting guess;
      signal_cap: the largest gamma accepted (None: no cap beyond the global one);
      uses_sigma: sigma (noise level) is a parameter of the response law;
      quadratic: w = 1, so the theory has closed forms (Marchenko–Pastur);
      closed_form: those closed forms (fixed points, the law's atoms), defined in the family's module;
      separability(gamma): for lam = 0, the n/p below which the data are separable w.h.p.
        (no minimizer), None when only n > p is needed;
      model_problem(gamma, sigma, lam): why a parameter combination has no influence at all, or None.

    Entry points resolve a name once (`get_family`) and pass the Family on. Frozen, hashable and
    equal field by field, it is a static argument of jit; its repr is its name, which keys
    compiled programs on disk (`compilecache.aot`).
    """

    name: str
    label: str
    loss: Callable
    grad: Callable
    hess: Callable
    prox: Callable
    sample: Callable
    response_law: Callable
    response_table: Callable
    support: str
    curvature: Callable
    signal_cap: float | None = None
    uses_sigma: bool = False
    quadratic: bool = False
    closed_form: object = None          # the theory's closed forms when it has them (gaussian.ClosedForm)
    separability: Callable | None = None
    model_problem: Callable | None = None

    def __repr__(self) -> str:
        return f"Family({self.name!r})"

    def label_problem(self, y) -> str | None:
        """Why the responses y are outside this family's support ("must be ..."), or None."""
        y = np.asarray(y)
        if not np.all(np.isfinite(y)):
            return "must be finite"
        if self.support == "binary" and not np.all((y == 0) | (y == 1)):
            return "must be 0 or 1"
        if self.support == "count" and not np.all((y >= 0) & (y == np.round(y))):
            return "must be non-negative integers"
        return None

    def sample_separable(self, X, y) -> bool:
        """For a binary family: are the two classes linearly separable (no lam = 0 minimizer)?"""
        return self.support == "binary" and linearly_separable(np.asarray(X), np.asarray(y))


# ---------------------------------------------------------------------- shared building blocks
def prox_tol(u, scale):
    """Convergence tolerance of a prox iteration at iterate u: 1e-15 (scale + |u|), with scale =
    1 + |z| (the size of the other terms of the prox equation). The equation's residual is only
    known to ~2 eps (|u| + |z|), so Newton steps below that are rounding noise: a tolerance of
    4 ulp of u alone (the former one) was below that noise for |u| << |z|."""
    return 1e-15 * (scale + jnp.abs(u))


def prox_loop(body: Callable, state, scale):
    """Iterate body on state = (u, lo, hi, step, it) (lo, hi may be None) until every element's
    last step is below `prox_tol(u, scale)` (or _PROX_MAX_ITERS iterations), each element frozen
    once converged, so its result does not depend on the other elements of the array (or batch).

    (Without the freeze a converged element kept iterating, and in the safeguarded Newton loops a
    Newton step that rounds to zero, the iterate being a bracket end, counted as leaving the
    bracket and sent it to the bracket's midpoint, ~50 bisections from the far end: the loop ran
    ~56 iterations where ~7 suffice.)
    """
    def active(state):
        return state[3] > prox_tol(state[0], scale)

    def cond(state):
        return jnp.any(active(state)) & (state[4] < _PROX_MAX_ITERS)

    def frozen(state):
        on = active(state)
        new = body(state)
        keep = [None if n is None else jnp.where(on, n, o) for n, o in zip(new[:4], state[:4])]
        return (*keep, new[4])

    return jax.lax.while_loop(cond, frozen, state)


def prox_with_jvp(solve: Callable, grad: Callable, hess: Callable, grad_y: Callable | None = None) -> Callable:
    """Wrap a root solver of eta + c l'(y, eta) = z with its implicit derivative;
    grad_y(y, eta) = d l'/dy (None: -1, the canonical families)."""

    @jax.custom_jvp
    def prox(y, z, c):
        return solve(y, z, c)

    @prox.defjvp
    def _prox_jvp(primals, tangents):
        y, z, c = primals
        dy, dz, dc = tangents
        eta = prox(y, z, c)
        g, w = grad(y, eta), hess(y, eta)
        dgy = c * dy if grad_y is None else -c * grad_y(y, eta) * dy
        deta = (dz - g * dc + dgy) / (1.0 + c * w)
        return eta, deta

    return prox


def bracketed_newton_prox(grad: Callable, hess: Callable, bracket: Callable) -> Callable:
    """Root of u + c l'(y, u) = z on [lo, hi] = bracket(y, z, c), by Newton safeguarded with
    bisection (rtsafe): bisect whenever the Newton point leaves the bracket or the step fails to
    halve the previous one, so the bracket shrinks at least geometrically; a Newton step below
    the tolerance (`prox_tol`) is always taken (it ends the iteration). A Newton point beyond
    a bracket end by less than that tolerance is put on the end, and the first step may cross
    the half-bracket (a root that rounds to the bracket end is then reached by Newton, not by
    ~50 bisections)."""

    def solve(y, z, c):
        y, z, c = jnp.broadcast_arrays(*(jnp.asarray(a, dtype=jnp.result_type(float)) for a in (y, z, c)))
        lo, hi = bracket(y, z, c)

        def body(state):
            u, lo, hi, dx_old, it = state
            f = u + c * grad(y, u) - z
            lo = jnp.where(f < 0, u, lo)
            hi = jnp.where(f > 0, u, hi)
            newton = u - f / (1.0 + c * hess(y, u))
            tol = prox_tol(u, scale)
            outside = (newton < lo - tol) | (newton > hi + tol)      # beyond rounding noise
            newton = jnp.clip(newton, lo, hi)
            bisect = outside | (2.0 * jnp.abs(newton - u) > jnp.abs(dx_old))
            bisect = bisect & (jnp.abs(newton - u) > tol)   # a converged step is taken
            u_new = jnp.where(f == 0, u, jnp.where(bisect, 0.5 * (lo + hi), newton))
            return u_new, lo, hi, jnp.abs(u_new - u), it + 1

        scale = 1.0 + jnp.abs(z)
        u, *_ = prox_loop(body, (0.5 * (lo + hi), lo, hi, 2.0 * (hi - lo), 0), scale)
        return u

    return solve


def binary_response_law(p_one: Callable) -> Callable:
    """response_law of a binary family with P(y = 1 | s) = p_one(s)."""
    def law(s, sigma, support):
        p1 = p_one(jnp.asarray(s))[..., None]
        y = jnp.broadcast_to(jnp.asarray([0.0, 1.0]), p1.shape[:-1] + (2,))
        return y, jnp.concatenate([1.0 - p1, p1], axis=-1)
    return law


def compiled_response_table(response_law: Callable, support: Callable[[float, int], int]) -> Callable:
    """response_table from a jax response_law, compiled as one program (op by op, each operation
    would be its own program to trace and compile, or load, in every fresh process);
    support(sigma, nodes) is the number of y values per signal node."""
    law = cached_jit(response_law, static_argnames=(list(inspect.signature(response_law).parameters)[2],))

    def table(s, sigma, nodes):
        return tuple(np.asarray(a) for a in law(s, sigma, support(sigma, nodes)))
    return table


def binary_response_table(response_law: Callable) -> Callable:
    return compiled_response_table(response_law, lambda sigma, nodes: 2)


def binary_separability(p_one_numpy: Callable) -> Callable:
    """delta_sep(gamma) = 1/h(gamma), h = min_t E[(t Y V - Z)_+^2] (Candès & Sur, no intercept),
    for a binary family with P(Y = 1 | V) = p_one(gamma V), V, Z iid N(0, 1), Y = +-1: the data
    are linearly separable w.h.p. iff delta = n/p < delta_sep; E[(u - Z)_+^2] = (u^2 + 1) Phi(u)
    + u phi(u). p_one_numpy is the numpy (scipy) version of the link's inverse."""

    @lru_cache(maxsize=128)
    def threshold(gamma: float, nodes: int = 200) -> float:
        from scipy.optimize import minimize_scalar
        from scipy.stats import norm

        x, w = np.polynomial.hermite_e.hermegauss(nodes)
        w = w / w.sum()
        p_pos = p_one_numpy(gamma * x)

        def h(t):
            total = 0.0
            for u, prob in ((t * x, p_pos), (-t * x, 1.0 - p_pos)):
                total += np.sum(w * prob * ((u * u + 1.0) * norm.cdf(u) + u * norm.pdf(u)))
            return total

        res = minimize_scalar(h, bounds=(-50.0, 50.0), method="bounded", options=dict(xatol=1e-12))
        return 1.0 / min(res.fun, h(0.0))

    return threshold


def linearly_separable(X: np.ndarray, y: np.ndarray) -> bool:
    """Whether some v has (2 y_i - 1) x_i^T v >= 1 for all i (a feasible linear program)."""
    from scipy.optimize import linprog

    n, p = X.shape
    signs = 2.0 * y - 1.0
    res = linprog(np.zeros(p), A_ub=-(signs[:, None] * X), b_ub=-np.ones(n),
                  bounds=[(None, None)] * p, method="highs")
    return res.status == 0


# ------------------------------------------------------------------------------------ registry
def _discover() -> dict[str, Family]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            fam = importlib.import_module(f"{__name__}.{info.name}").FAMILY
            found[fam.name] = fam
    order = ("gaussian", "logistic", "poisson")     # the historical order first, then the rest
    return {k: found[k] for k in sorted(found, key=lambda k: (order.index(k) if k in order else len(order), k))}


FAMILIES: dict[str, Family] = _discover()


def get_family(family: str | Family) -> Family:
    """Return the `Family` named `family` (or `family` itself); unknown names raise."""
    if isinstance(family, Family):
        return family
    if isinstance(family, str) and family.lower() in FAMILIES:
        return FAMILIES[family.lower()]
    raise InvalidParameterError(
        f"family must be one of {', '.join(FAMILIES)}, got {family!r}.")
