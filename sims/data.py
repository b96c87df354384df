"""Synthetic data of DESIGN.md §2: Gaussian design, Gaussian truth, family responses.

x_i iid N(0, Sigma) with Sigma = I_p / p (so ||x_i||^2 ~ 1), beta* iid N(0, gamma^2),
y_i | s_i from the family with s_i = x_i^T beta*; test points x_0 drawn like x_i.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from theory.families import get_family


class Data(NamedTuple):
    X: jax.Array          # (n, p) training design
    y: jax.Array          # (n,) responses
    X0: jax.Array         # (T, p) test points
    beta_star: jax.Array  # (p,) truth


@partial(jax.jit, static_argnames=("family", "n", "p", "n_test"))
def make_data(key, *, family: str, n: int, p: int, n_test: int, gamma, sigma) -> Data:
    """Draw one data set; every random bit derives from `key`."""
    k_x, k_x0, k_beta, k_y = jax.random.split(key, 4)
    scale = 1.0 / jnp.sqrt(p)
    X = scale * jax.random.normal(k_x, (n, p), dtype=jnp.float64)
    X0 = scale * jax.random.normal(k_x0, (n_test, p), dtype=jnp.float64)
    beta_star = gamma * jax.random.normal(k_beta, (p,), dtype=jnp.float64)
    y = get_family(family).sample(k_y, X @ beta_star, sigma)
    return Data(X, y, X0, beta_star)
