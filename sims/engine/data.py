"""Synthetic data of docs/conventions.md: design, Gaussian truth, family responses.

x_i iid with covariance diag(s)/p, isotropic by default (s = 1, so ||x_i||^2 ~ 1; other spectra and
the alignment of beta* in `theory.covariance`): entries sqrt(s_j) z/sqrt(p) with z standard normal
("gaussian", the default of the theory), a Rademacher sign ("rademacher") or a Student-t with 5
degrees of freedom scaled to unit variance ("student_t", heavy tails), to test universality.
beta* iid N(0, gamma^2); y_i | s_i from the family with s_i = x_i^T beta*; test points x_0
drawn like x_i.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from theory.families import Family, get_family
from theory.shapes import bucket

from .params import DESIGNS
from .tiers import tiered_jit

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


# --------------------------------------------------------------- draws in bucketed sizes
FLAT_DRAWS = ("gaussian", "rademacher")   # elementwise transforms of the random bits


MIN_BUCKET = 1 << 14     # drawing 16384 normals takes ~0.7 ms, compiling another sampler ~0.2 s


@partial(jax.jit, static_argnames=("size", "kind"))
def _flat_draw(key, *, size: int, kind: str):
    if kind == "gaussian":
        return jax.random.normal(key, (size,), dtype=jnp.float64)
    return jax.random.rademacher(key, (size,), dtype=jnp.float64)


def flat_draw(key, size: int, kind: str) -> jax.Array:
    """At least `size` iid draws of `kind` (gaussian or rademacher) from `key`, whose first `size`
    entries reshaped to any shape of that size equal `jax.random.<kind>(key, shape)` bit for bit.

    JAX's partitionable threefry (on by default) makes element i of a draw depend on the key and
    i alone, so a draw of a larger size has the smaller one as its prefix. Drawing in bucketed
    sizes (`theory.shapes.bucket`: four per octave, at least MIN_BUCKET) lets one compiled sampler serve every shape of its bucket: the threefry program costs
    ~0.2–0.3 s to compile, which in a sweep over n, p and k was paid for every shape. Without
    partitionable threefry the draw is of exactly `size`."""
    exact = not jax.config.jax_threefry_partitionable
    return _flat_draw(key, size=size if exact else bucket(size, minimum=MIN_BUCKET), kind=kind)


def take(flat, shape) -> jax.Array:
    """The first prod(shape) entries of a `flat_draw`, as an array of `shape` (inside jit)."""
    return flat[:math.prod(shape)].reshape(shape)


@jax.jit
def _split4(key):
    return jax.random.split(key, 4)


@tiered_jit(static_argnames=("family", "n", "p", "n_test"))
def _data_from_draws(zx, zx0, zb, k_y, gamma, sigma, spectrum, theta, *, family: Family, n, p, n_test) -> Data:
    scale = 1.0 / jnp.sqrt(p) if spectrum is None else jnp.sqrt(jnp.asarray(spectrum) / p)
    X = scale * take(zx, (n, p))
    X0 = scale * take(zx0, (n_test, p))
    beta_star = gamma * take(zb, (p,))
    if theta is not None:
        beta_star = beta_star * jnp.sqrt(jnp.asarray(theta))
    y = family.sample(k_y, X @ beta_star, sigma)
    return Data(X, y, X0, beta_star)


def make_data(key, *, family: Family | str, n: int, p: int, n_test: int, gamma, sigma,
              design: str = "gaussian", spectrum=None, theta=None) -> Data:
    """Draw one data set; every random bit derives from `key`.

    `spectrum` s (p,) and `theta` (p,) give the covariance diag(s)/p and the alignment of beta*
    (`theory.covariance`; default isotropic): column j of X is scaled by sqrt(s_j), and
    beta*_j = gamma sqrt(theta_j) N(0, 1). With key split in four (X, X0, beta*, y), the draws
    of X, X0 and beta* are `flat_draw`s (the same numbers as drawn in their shapes), so only the
    response sampling is compiled per shape; the student_t design is drawn in its shape.
    `family`: a `Family` or its name.
    """
    family = get_family(family)
    if design not in FLAT_DRAWS:
        return _make_data_in_shape(key, family=family, n=n, p=p, n_test=n_test, gamma=gamma, sigma=sigma,
                                   design=design, spectrum=spectrum, theta=theta)
    k_x, k_x0, k_beta, k_y = _split4(key)
    return _data_from_draws(flat_draw(k_x, n * p, design), flat_draw(k_x0, n_test * p, design),
                            flat_draw(k_beta, p, "gaussian"), k_y, gamma, sigma, spectrum, theta,
                            family=family, n=n, p=p, n_test=n_test)


@partial(jax.jit, static_argnames=("family", "n", "p", "n_test", "design"))
def _make_data_in_shape(key, *, family: Family, n: int, p: int, n_test: int, gamma, sigma,
                        design: str = "gaussian", spectrum=None, theta=None) -> Data:
    """`make_data` with every draw in its own shape (one program per shape)."""
    k_x, k_x0, k_beta, k_y = jax.random.split(key, 4)
    scale = 1.0 / jnp.sqrt(p) if spectrum is None else jnp.sqrt(jnp.asarray(spectrum) / p)
    X = scale * design_entries(k_x, (n, p), design)
    X0 = scale * design_entries(k_x0, (n_test, p), design)
    beta_star = gamma * jax.random.normal(k_beta, (p,), dtype=jnp.float64)
    if theta is not None:
        beta_star = beta_star * jnp.sqrt(jnp.asarray(theta))
    y = family.sample(k_y, X @ beta_star, sigma)
    return Data(X, y, X0, beta_star)
