"""Synthetic data of docs/conventions.md: design, Gaussian truth, family responses.

x_i iid with covariance diag(s)/p, isotropic by default (s = 1, so ||x_i||^2 ~ 1; other spectra and
the alignment of beta* in `theory.covariance`): entries sqrt(s_j) z/sqrt(p) with z standard normal
("gaussian", the default of the theory), a Rademacher sign ("rademacher") or a Student-t with 5
degrees of freedom scaled to unit variance ("student_t", heavy tails), to test universality.
beta* iid N(0, gamma^2); y_i | s_i from the family with s_i = x_i^T beta*; test points x_0
drawn like x_i.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from theory.families import get_family

from .params import DESIGNS
STUDENT_DF = 5.0


class Data(NamedTuple):
    X: jax.Array          # (n, p) training design
    y: jax.Array          # (n,) responses
    X0: jax.Array         # (T, p) test points
    beta_star: jax.Array  # (p,) truth


def design_entries(key, shape, design: str = "gaussian"):
    """iid entries with mean 0 and variance 1."""
    if design == "gaussian":
        return jax.random.normal(key, shape, dtype=jnp.float64)
    if design == "rademacher":
        return jax.random.rademacher(key, shape, dtype=jnp.float64)
    if design == "student_t":
        t = jax.random.t(key, STUDENT_DF, shape, dtype=jnp.float64)
        return t * jnp.sqrt((STUDENT_DF - 2.0) / STUDENT_DF)
    raise ValueError(f"unknown design {design!r}")


@partial(jax.jit, static_argnames=("family", "n", "p", "n_test", "design"))
def make_data(key, *, family: str, n: int, p: int, n_test: int, gamma, sigma,
              design: str = "gaussian", spectrum=None, theta=None) -> Data:
    """Draw one data set; every random bit derives from `key`.

    `spectrum` s (p,) and `theta` (p,) give the covariance diag(s)/p and the alignment of beta*
    (`theory.covariance`; default isotropic): column j of X is scaled by sqrt(s_j), and
    beta*_j = gamma sqrt(theta_j) N(0, 1).
    """
    k_x, k_x0, k_beta, k_y = jax.random.split(key, 4)
    scale = 1.0 / jnp.sqrt(p) if spectrum is None else jnp.sqrt(jnp.asarray(spectrum) / p)
    X = scale * design_entries(k_x, (n, p), design)
    X0 = scale * design_entries(k_x0, (n_test, p), design)
    beta_star = gamma * jax.random.normal(k_beta, (p,), dtype=jnp.float64)
    if theta is not None:
        beta_star = beta_star * jnp.sqrt(jnp.asarray(theta))
    y = get_family(family).sample(k_y, X @ beta_star, sigma)
    return Data(X, y, X0, beta_star)
