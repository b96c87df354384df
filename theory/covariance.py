"""Feature covariance and truth alignment (shared by `theory` and `sims`).

x_i ~ N(0, Sigma) with Sigma = V diag(s) V^T / p, spectrum normalized to (1/p) sum_j s_j = 1
(isotropic: s = 1, Sigma = I/p). The truth is beta* = V b with b_j ~ N(0, gamma^2 theta_j) and
alignment weights theta_j proportional to s_j^a, normalized so (1/p) sum_j s_j theta_j = 1, hence
x^T beta* ~ N(0, gamma^2) whatever the spectrum. With Gaussian features and Gaussian sketches
everything is rotation-equivariant, so V = I (Sigma diagonal) without loss of generality.

Spectra (`spectrum(kind, p, param)`):
  isotropic   s_j = 1
  power       s_j proportional to j^(-param)        (param = decay exponent alpha >= 0)
  spiked      three spikes param * (1, 1/2, 1/4) on a flat bulk of 1
  ar1         eigenvalues of the AR(1) correlation matrix param^|i - j| (param = rho in [0, 1))
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidParameterError

COVARIANCES = ("isotropic", "power", "spiked", "ar1")


def spectrum(kind: str, p: int, param: float = 0.0) -> np.ndarray:
    """Eigenvalues s_1 >= ... >= s_p of p Sigma, mean 1."""
    if kind == "isotropic":
        s = np.ones(p)
    elif kind == "power":
        s = np.arange(1, p + 1, dtype=float) ** (-float(param))
    elif kind == "spiked":
        s = np.ones(p)
        spikes = float(param) * np.array([1.0, 0.5, 0.25])
        s[:min(3, p)] = np.maximum(spikes[:min(3, p)], 1.0)
    elif kind == "ar1":
        import scipy.linalg   # here, not at the top: it costs ~0.2 s of every start-up

        s = np.linalg.eigvalsh(scipy.linalg.toeplitz(float(param) ** np.arange(p)))[::-1].copy()
    else:
        raise InvalidParameterError(f"covariance must be one of {', '.join(COVARIANCES)}, got {kind!r}.")
    return s * p / s.sum()


def alignment(s: np.ndarray, power: float = 0.0) -> np.ndarray:
    """theta_j proportional to s_j^power with (1/p) sum_j s_j theta_j = 1 (power 0: theta = 1)."""
    theta = np.asarray(s, float) ** float(power)
    return theta / np.mean(s * theta)


def effective_dimension(s: np.ndarray, ridge: float) -> float:
    """d(ell) = sum_j s_j / (s_j + ell): the number of directions a population ridge ell keeps."""
    return float(np.sum(s / (s + ridge)))


def power_tail(last: float, mass: float, count: int) -> np.ndarray:
    """count values last (1 + j/count)^-a, j = 1..count, summing to mass: a power-law continuation
    of a spectrum known down to `last` (the tail model of randomized spectra: `sims.runs.features`,
    `theory.conditional`); flat when mass >= last * count."""
    if mass >= last * count or last <= 0:
        return np.full(count, mass / count)
    j = np.arange(1, count + 1, dtype=float)
    lo, hi = 0.0, 1.0
    f = lambda a: np.sum(last * (1.0 + j / count) ** (-a)) - mass  # noqa: E731
    while f(hi) > 0 and hi < 1e6:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
    vals = last * (1.0 + j / count) ** (-hi)
    return vals * mass / vals.sum()
