"""Quadrature of the limit law of one training point of the fitted ridge GLM.

Limit law (docs/theory.md §1): nu, xi iid N(0, 1), s = gamma nu = x^T beta*, y | s from the family,
the cavity field z = x^T beta_hat_{-i} = a nu + r xi (a = m / gamma, m = <beta*, beta_hat>/p),
eta = prox_{c l(y, .)}(z) = x^T beta_hat, g = l'(y, eta), w = l''(y, eta).

Expectations E[f(nu, y, g, w)] are tensor Gauss–Hermite sums over (nu, xi) times the law of y | s:
the family's `response_table`: exact for the binary families ({0, 1}), an exact pmf window for
poisson (the y values around e^s that carry all but ~1e-15 of the mass), Gauss–Hermite in the
noise for gaussian.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from compilecache import cached_jit
from .families import Family
from .shapes import bucket

DEFAULT_NODES = 40
_PRUNE = 1e-15


@lru_cache(maxsize=64)
def _hermite(n: int):
    """Probabilists' Gauss–Hermite rule for N(0, 1): nodes and weights summing to 1."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / w.sum()


@partial(jax.tree_util.register_dataclass, data_fields=["nu", "xi", "y", "weight"], meta_fields=[])
@dataclass(frozen=True)
class LawGrid:
    """Fixed (parameter-free except gamma, sigma) part of the quadrature: nodes, y values, weights.

    Flat arrays over the atoms: nu, xi, y and weight (product of the three rules); (nu, y) pairs
    whose weight is below 1e-15 of the largest are dropped. A pytree: compiled functions take it
    as an argument, so they are compiled per array size, not per gamma. The size is rounded up
    (`shapes.bucket`: four sizes per octave, hence few compilations across gamma, one for logistic
    at gamma < 5 with the default nodes) with zero-weight copies of the first atom, which add exactly 0 to every sum.
    """

    nu: np.ndarray
    xi: np.ndarray
    y: np.ndarray
    weight: np.ndarray


@lru_cache(maxsize=256)
def law_grid(family: Family, gamma: float, sigma: float, nodes: int = DEFAULT_NODES) -> LawGrid:
    """Build the quadrature grid of (nu, xi, y) for the family at signal gamma and noise sigma."""
    with jax.ensure_compile_time_eval():   # concrete numpy even when first called inside jit
        return _law_grid(family, gamma, sigma, nodes)


def _law_grid(fam, gamma, sigma, nodes):
    x, wx = _hermite(nodes)
    y, py = fam.response_table(gamma * x, sigma, nodes)   # one row of y values per nu node
    pair_w = wx[:, None] * py                        # (nu node, y value) pairs
    keep = pair_w > _PRUNE * pair_w.max()            # each dropped pair weighs < 1e-15
    nu_k, y_k, w_k = np.broadcast_to(x[:, None], y.shape)[keep], y[keep], pair_w[keep]
    nu = np.repeat(nu_k, nodes)
    yy = np.repeat(y_k, nodes)
    xi = np.tile(x, nu_k.size)
    weight = np.repeat(w_k, nodes) * np.tile(wx, nu_k.size)
    arrays = [nu, xi, yy, weight / weight.sum()]
    pad = bucket(nu.size) - nu.size
    arrays = [np.concatenate([a, np.full(pad, a[0] if i < 3 else 0.0)]) for i, a in enumerate(arrays)]
    return LawGrid(*(np.ascontiguousarray(a, dtype=np.float64) for a in arrays))


def quadrature(family: Family, gamma: float, sigma: float, nodes: int = DEFAULT_NODES):
    """The grid argument of the compiled theory functions: `law_grid` (sigma plays no role for the
    families without a noise level), None for a family with closed forms (`Family.closed_form`)."""
    if family.closed_form is not None:
        return None
    return law_grid(family, float(gamma), float(sigma) if family.uses_sigma else 0.0, int(nodes))


def atoms(grid: LawGrid, family: Family, c, a, r):
    """(nu, y, g, w, weight) at every atom for the fixed-point unknowns (c, a = m/gamma, r)."""
    nu, xi, y, weight = (jnp.asarray(v) for v in (grid.nu, grid.xi, grid.y, grid.weight))
    z = a * nu + r * xi
    eta = family.prox(y, z, c)
    return nu, y, family.grad(y, eta), family.hess(y, eta), weight


@cached_jit(static_argnames=("family",))
def atoms_compiled(grid: LawGrid, family: Family, c, a, r):
    """`atoms` as one compiled program, for callers outside jit (op by op, the prox's while loop
    costs ~0.25 s a call)."""
    return atoms(grid, family, c, a, r)
