"""Feature matrices read by row blocks: products with X (n x p, an array, a memory map or `Rows`)
without holding more than one block of it in float64 (BLOCK_BYTES), for files larger than memory.
Every product is accumulated in float64 whatever the file's dtype."""

from __future__ import annotations

import numpy as np

BLOCK_BYTES = 128 * 2**20   # float64 bytes of one row block


class Rows:
    """The rows `index` (sorted, or None for all) of X (an array or a memory map) without copying
    them: `shape`, `dtype`, and indexing by a slice or an integer array (positions among these
    rows) read only the rows asked for. np.asarray(rows) copies them all (deliberately only).
    finite=True records that the caller has checked every value, so that consumers need not read
    the file once more to do so."""

    def __init__(self, X, index=None, finite: bool = False):
        self.X = X
        self.finite = finite
        self.index = None if index is None else np.asarray(index)
        self.shape = (X.shape[0] if index is None else self.index.size, X.shape[1])
        self.dtype = X.dtype
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if self.index is None:
            return self.X[key]
        return self.X[self.index[key]]

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.X if self.index is None else self.X[self.index])
        return out if dtype is None else out.astype(dtype, copy=False)


def block_rows(p: int, block_bytes: int | None = None) -> int:
    """Rows of one block: block_bytes (default BLOCK_BYTES) of float64 values, at least 1."""
    return max(1, (BLOCK_BYTES if block_bytes is None else block_bytes) // (8 * p))


def blocks(X, block_bytes: int | None = None):
    """Yield (start, block): float64 copies of consecutive rows of X, block_bytes (default
    BLOCK_BYTES) at most each."""
    n, p = X.shape
    rows = block_rows(p, block_bytes)
    for i in range(0, n, rows):
        yield i, np.asarray(X[i:i + rows], dtype=np.float64)


def times(X, V) -> np.ndarray:
    """X V (n x m, or n for a vector V)."""
    V = np.asarray(V, dtype=np.float64)
    out = np.empty((X.shape[0],) + V.shape[1:])
    for i, B in blocks(X):
        out[i:i + B.shape[0]] = B @ V
    return out


def t_times(X, U) -> np.ndarray:
    """X^T U (p x m, or p for a vector U; U has n rows)."""
    U = np.asarray(U, dtype=np.float64)
    out = np.zeros((X.shape[1],) + U.shape[1:])
    for i, B in blocks(X):
        out += B.T @ U[i:i + B.shape[0]]
    return out


def gram(X, weights=None, Q=None) -> np.ndarray:
    """X^T diag(weights) X (p x p), or its product with Q (p x m) without forming it."""
    out = np.zeros((X.shape[1], X.shape[1] if Q is None else Q.shape[1]))
    for i, B in blocks(X):
        if weights is not None:
            B = B * np.sqrt(np.asarray(weights[i:i + B.shape[0]], dtype=np.float64))[:, None]
        out += B.T @ B if Q is None else B.T @ (B @ Q)
    return out


def squared_norms(X, weights=None) -> np.ndarray:
    """||x_i||^2 (n,), each row weighted by weights_i when given."""
    out = np.empty(X.shape[0])
    for i, B in blocks(X):
        out[i:i + B.shape[0]] = np.einsum("ij,ij->i", B, B)
    return out if weights is None else out * np.asarray(weights, dtype=np.float64)


def rows_at(X, idx) -> np.ndarray:
    """The rows idx of X in float64 (a gather: memory maps read only those rows)."""
    return np.asarray(X[np.asarray(idx)], dtype=np.float64)
