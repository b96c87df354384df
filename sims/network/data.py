"""Data for the network experiment: scikit-learn's digits, binary label (digit >= 5).

Pixels are standardized over all 1797 images (constant pixels dropped: d = 61), so inputs have
entries of order 1. A seed draws n training images and n_test test images, disjoint; the rest
(`X_rest`) serves the plug-in summary of the after-kernel (`sims.network.experiment`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from theory.errors import InvalidParameterError

DATASETS = {"digits": "8 x 8 digit images, label digit >= 5 (1797 images, 61 non-constant pixels)"}


class Split(NamedTuple):
    X: np.ndarray        # (n, d)
    y: np.ndarray        # (n,) in {0, 1}
    X0: np.ndarray       # (T, d) test inputs
    y0: np.ndarray       # (T,)
    X_all: np.ndarray    # (N, d) every image (train, test and the rest)
    y_all: np.ndarray


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(Z, y): standardized inputs and binary labels of the whole dataset."""
    if name not in DATASETS:
        raise InvalidParameterError(f"dataset must be one of {', '.join(DATASETS)}, got {name!r}.")
    try:
        from sklearn import datasets
    except ImportError:
        raise InvalidParameterError("the network experiment needs scikit-learn: pip install 'trak-sim[data]'.") from None
    raw = datasets.load_digits()
    Z, y = raw.data.astype(float), (raw.target >= 5).astype(float)
    Z = Z[:, Z.std(axis=0) > 0]
    return (Z - Z.mean(axis=0)) / Z.std(axis=0), y


def split(name: str, n: int, n_test: int, key) -> Split:
    Z, y = load_dataset(name)
    N = Z.shape[0]
    if n + n_test > N:
        raise InvalidParameterError(f"{name} has {N} images, fewer than n_train + n_test = {n + n_test}.")
    perm = np.asarray(jax.random.permutation(key, N))
    tr, te = perm[:n], perm[n:n + n_test]
    return Split(Z[tr], y[tr], Z[te], y[te], Z, y)
