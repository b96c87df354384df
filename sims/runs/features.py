"""A user's own training features: loading, validation, spectrum, GLM fit and plug-in signal.

Used by `trak-sim plan` (`sims.runs.plan`) and by the real datasets (`sims.runs.real`).

Scale (docs/plan.md). The user's rows x_i (n x p, any scale) map to the suite's normalization
x ~ N(0, Sigma/p), tr(Sigma)/p = 1, by x_suite = x / c with c^2 = (1/n) sum_i ||x_i||^2. The fit
sum_i l(y_i, x_i^T beta) + (lam/2)||beta||^2 and TRAK's Gram P^T X^T X P + lam_T I are then the
suite's with lam_suite = lam / c^2, lam_T,suite = lam_T / c^2 (beta_suite = c beta); influences and
metrics are unchanged.

Spectrum: the eigenvalues lambda_j of X^T X, as s_j = p lambda_j / (n c^2) (mean 1; the spectrum
of p Sigma_hat in suite units). Exact (symmetric eigendecomposition of the p x p Gram X^T X or of
the n x n Gram X X^T, whichever is smaller, accumulated over row blocks in float64) when
min(n, p) <= EXACT_MAX; otherwise a randomized range finder with power iterations on X^T X
(Halko, Martinsson & Tropp 2011, Alg. 4.3/5.3), each product X^T (X Q) streamed over row blocks,
for the top `top` eigenpairs; the remaining trace tr(X^T X) - sum(top), known exactly from the
stream, is spread over the other min(n, p) - top directions as a power-law continuation of the
last computed eigenvalue (flat if the remainder is larger than that allows). Zero eigenvalues
(n < p, or rank-deficient features) are kept as zeros.

Plug-in signal (as for the real datasets): with b = V^T beta_hat (beta_hat the fitted or given
coefficients, V the eigenvectors), gamma^2 = beta^T Sigma_hat beta = (1/n)||X beta||^2 and
theta_j = c^2 b_j^2 / gamma^2, so that (1/p) sum_j s_j theta_j = 1; for the gaussian family
sigma^2 = (1/n)||y - X beta||^2. Directions beyond the computed eigenvectors (randomized path) get
a common theta carrying the rest of gamma^2.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from theory.covariance import power_tail
from theory.errors import InvalidParameterError
from theory.families import Family, get_family
from theory.rows import BLOCK_BYTES, block_rows, gram, t_times
from theory.rows import blocks as row_blocks
from theory.solvers import Status, check_status, conjugate_gradient, damped_newton_minimize, host_while_loop

EXACT_MAX = 2000            # exact eigendecomposition when min(n, p) <= this
TOP = 500                   # eigenpairs of the randomized path
OVERSAMPLE = 12
POWER_ITERS = 2
CG_MAX_STEPS = 500          # conjugate-gradient steps per Newton system of `fit_glm`


# ---------------------------------------------------------------------------------- loading
def load_array(path, what):
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise InvalidParameterError(f"{what} {path} holds pickled data, which is never loaded; "
                                        "save plain numeric arrays (np.save / np.savez).") from None
        raise InvalidParameterError(f"{what} {path} is not a readable .npy/.npz file ({e}).") from None


def load_features(data=None, *, features=None, labels=None):
    """(X, y) from an .npz with arrays X (n x p) and y (n), or from two .npy files.

    .npy files are memory-mapped (nothing is read until used); nothing is ever unpickled
    (allow_pickle=False). Raises InvalidParameterError for a missing array, a pickled or
    unreadable file, or both/neither of the two forms."""
    if (data is None) == (features is None and labels is None):
        raise InvalidParameterError("give either an .npz file (data) or both features and labels .npy files.")
    if data is not None:
        z = load_array(data, "data file")
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise InvalidParameterError(f"data file {data} must be an .npz archive with arrays X and y.")
        missing = [k for k in ("X", "y") if k not in z.files]
        if missing:
            raise InvalidParameterError(f"data file {data} has no array {missing[0]!r} (it has {', '.join(z.files) or 'none'}).")
        try:
            return z["X"], z["y"]
        except ValueError:
            raise InvalidParameterError(f"data file {data} holds pickled data, which is never loaded; "
                                        "save plain numeric arrays (np.savez).") from None
    if features is None or labels is None:
        raise InvalidParameterError("features and labels must be given together.")
    X, y = load_array(features, "features file"), load_array(labels, "labels file")
    if isinstance(X, np.lib.npyio.NpzFile) or isinstance(y, np.lib.npyio.NpzFile):
        raise InvalidParameterError("features and labels must be .npy files (use data for an .npz).")
    return X, y


def load_test_rows(path):
    """Test rows from an .npy file or an .npz archive with array X (or X0): a 2-D numeric array."""
    z = load_array(path, "test file")
    if isinstance(z, np.lib.npyio.NpzFile):
        name = next((k for k in ("X0", "X") if k in z.files), None)
        if name is None:
            raise InvalidParameterError(f"test file {path} has no array 'X' or 'X0' (it has {', '.join(z.files) or 'none'}).")
        z = z[name]
    if not isinstance(z, np.ndarray) or z.dtype.kind not in "biuf" or z.ndim != 2:
        raise InvalidParameterError(f"test file {path} must hold a 2-D numeric array (rows x p).")
    return z


def check_features(X, y, family: Family | str):
    """Validate (X, y) for `family`; return X (untouched: memory maps stay mapped) and y (float64).

    One-sentence InvalidParameterError for: a family outside FAMILIES, non-numeric arrays, X not
    2-D or y not 1-D, len(y) != n, n or p < 2, non-finite values, labels outside the family's
    support (`Family.label_problem`: {0, 1} for the binary families, non-negative integers for
    poisson)."""
    fam = get_family(family)
    for name, a in (("features X", X), ("labels y", y)):
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
            raise InvalidParameterError(f"{name} must be a numeric array, got dtype {getattr(a, 'dtype', type(a))}.")
    if X.ndim != 2:
        raise InvalidParameterError(f"features X must be 2-D (n x p), got shape {X.shape}.")
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise InvalidParameterError(f"labels y must be 1-D, got shape {y.shape}.")
    n, p = X.shape
    if y.shape[0] != n:
        raise InvalidParameterError(f"labels y have length {y.shape[0]} but X has {n} rows.")
    if n < 2 or p < 2:
        raise InvalidParameterError(f"X must have at least 2 rows and 2 columns, got {n} x {p}.")
    if not np.all(np.isfinite(y)):
        raise InvalidParameterError("labels y contain non-finite values (NaN or inf).")
    if X.dtype.kind == "f":
        for i, B in row_blocks(X):
            if not np.all(np.isfinite(B)):
                row = i + int(np.argmin(np.all(np.isfinite(B), axis=1)))
                raise InvalidParameterError(f"features X contain non-finite values (first in row {row}).")
    problem = fam.label_problem(y)
    if problem:
        raise InvalidParameterError(f"labels y {problem} for the {fam.name} family.")
    return X, y


# --------------------------------------------------------------------------------- products
def matvec(X, v):
    """X v (n,), over row blocks; float32 features are multiplied in float32."""
    out = np.empty(X.shape[0])
    if X.dtype == np.float32:
        v32 = v.astype(np.float32)
        rows = block_rows(X.shape[1])
        for i in range(0, X.shape[0], rows):
            out[i:i + rows] = X[i:i + rows] @ v32
        return out
    for i, B in row_blocks(X):
        out[i:i + B.shape[0]] = B @ v
    return out


def rmatvec(X, u):
    """X^T u (p,), over row blocks."""
    out = np.zeros(X.shape[1])
    rows = block_rows(X.shape[1])
    for i in range(0, X.shape[0], rows):
        B = X[i:i + rows]
        if X.dtype == np.float32:
            out += B.T @ u[i:i + rows].astype(np.float32)
        else:
            out += np.asarray(B, dtype=np.float64).T @ u[i:i + rows]
    return out


def _gram_times(X, Q):
    """X^T (X Q) over row blocks (Q p x l), in X's precision for float32 features."""
    out = np.zeros((X.shape[1], Q.shape[1]))
    rows = block_rows(max(X.shape[1], Q.shape[1]))
    Qc = Q.astype(np.float32) if X.dtype == np.float32 else Q
    for i in range(0, X.shape[0], rows):
        B = X[i:i + rows] if X.dtype == np.float32 else np.asarray(X[i:i + rows], dtype=np.float64)
        out += B.T @ (B @ Qc)
    return out


# --------------------------------------------------------------------------------- spectrum
class Spectrum(NamedTuple):
    eig: np.ndarray        # (p,) eigenvalues of X^T X, descending (user scale)
    V: np.ndarray          # (p, r) eigenvectors of the leading r eigenvalues
    trace: float           # tr(X^T X) = sum_i ||x_i||^2
    method: str            # "exact-primal", "exact-dual" or "randomized"
    rank: int              # numerical rank (exact) or min(n, p) (randomized)


def feature_spectrum(X, *, method: str = "auto", top: int = TOP, power_iters: int = POWER_ITERS,
                     seed: int = 0) -> Spectrum:
    """Eigenvalues of X^T X (and leading eigenvectors); see the module docstring."""
    n, p = X.shape
    if method not in ("auto", "exact", "randomized"):
        raise InvalidParameterError(f"spectrum method must be auto, exact or randomized, got {method!r}.")
    trace = sum(float(np.einsum("ij,ij->", B, B)) for _, B in row_blocks(X))
    if trace <= 0:
        raise InvalidParameterError("features X are all zero.")
    if method == "exact" or (method == "auto" and min(n, p) <= EXACT_MAX):
        if p <= n:
            lam, V = np.linalg.eigh(gram(X))
            lam, V = lam[::-1], V[:, ::-1]
            how = "exact-primal"
        else:
            K = np.zeros((n, n))
            # X X^T by column blocks of X
            cols = max(1, BLOCK_BYTES // (8 * n))
            for j in range(0, p, cols):
                B = np.asarray(X[:, j:j + cols], dtype=np.float64)
                K += B @ B.T
            mu, U = np.linalg.eigh(K)
            mu, U = mu[::-1], U[:, ::-1]
            keep = mu > mu[0] * max(n, p) * np.finfo(float).eps
            U, mu_k = U[:, keep], mu[keep]
            V = t_times(X, U) / np.sqrt(mu_k)               # right singular vectors, p x r
            lam = np.concatenate([mu, np.zeros(p - n)])
            how = "exact-dual"
        lam = np.clip(lam, 0.0, None)
        tol = lam[0] * max(n, p) * np.finfo(float).eps
        lam[lam <= tol] = 0.0
        r = int(np.sum(lam > 0))
        return Spectrum(lam, V[:, :r] if how == "exact-dual" else V, trace, how, r)
    # randomized range finder with power iterations, streamed over row blocks
    rmax = min(n, p)
    ell = min(rmax, top + OVERSAMPLE)
    rng = np.random.default_rng(seed)
    Y = _gram_times(X, rng.standard_normal((p, ell)))
    for _ in range(power_iters):
        Q, _ = np.linalg.qr(Y)
        Y = _gram_times(X, Q)
    Q, _ = np.linalg.qr(Y)
    T = Q.T @ _gram_times(X, Q)
    lam_t, W = np.linalg.eigh((T + T.T) / 2)
    order = np.argsort(lam_t)[::-1][:min(top, ell)]
    lam_t, V = np.clip(lam_t[order], 0.0, None), Q @ W[:, order]
    m = lam_t.size
    tail = np.zeros(p - m)
    rest, count = max(trace - lam_t.sum(), 0.0), rmax - m
    if count > 0 and rest > 0:
        tail[:count] = power_tail(lam_t[-1], rest, count)
    return Spectrum(np.concatenate([lam_t, tail]), V, trace, "randomized", rmax)


# -------------------------------------------------------------------------------------- fit
def fit_glm(X, y, family: Family | str, lam: float, spec: Spectrum, *, tol: float | None = None,
            max_iter: int = 60, beta0=None):
    """Ridge GLM on the host (user scale): the damped Newton of `theory.solvers.damped_newton_minimize`
    with every product with X over row blocks, each Newton system (X^T W X + lam I) d = grad solved
    inexactly by `theory.solvers.conjugate_gradient` (to ||residual|| <= min(0.1, sqrt(rel)) ||grad||,
    rel = ||grad|| / ||grad(beta0)||; at most CG_MAX_STEPS) preconditioned with
    V diag(1/(w_bar lambda + lam)) V^T + (I - V V^T)/(w_bar lambda_rest + lam) (w_bar = mean w,
    lambda_rest the largest eigenvalue not in V; exact for the gaussian family). Stops at
    rel <= tol (1e-9, 1e-6 for float32 features); a stop by the line search or the cap at rel <= 1e-4
    (the rounding floor of float32 products) is accepted. Returns
    (beta, {"newton_steps", "cg_steps", "rel_grad"}); raises NotConvergedError otherwise.
    `family`: a `Family` or its name."""
    fam = get_family(family)
    if tol is None:
        tol = 1e-6 if X.dtype == np.float32 else 1e-9
    p = X.shape[1]
    V, lamV = spec.V, spec.eig[:spec.V.shape[1]]
    rest = spec.eig[V.shape[1]] if V.shape[1] < p else 0.0
    eta_of = _last_values(lambda beta: matvec(X, beta))

    def F(beta):
        return float(np.sum(np.asarray(fam.loss(y, eta_of(beta))))) + 0.5 * lam * float(beta @ beta)

    gradient = _last_values(lambda beta: rmatvec(X, np.asarray(fam.grad(y, eta_of(beta)))) + lam * beta)
    beta = np.zeros(p) if beta0 is None else np.array(beta0, dtype=float)
    g0 = float(np.linalg.norm(gradient(beta)))
    cg_total = [0]

    def cg_direction(beta):
        """(grad, d), d from preconditioned CG on (X^T W X + lam I) d = grad (inexact Newton)."""
        beta = np.asarray(beta)
        grad, w = gradient(beta), np.asarray(fam.hess(y, eta_of(beta)))
        gn = float(np.linalg.norm(grad))
        wb = float(np.mean(w))
        dV, dR = 1.0 / (wb * lamV + lam), 1.0 / (wb * rest + lam)

        def precond(v):
            v = np.asarray(v)
            c = V.T @ v
            return V @ (dV * c) + dR * (v - V @ c)

        def hessian_times(v):
            v = np.asarray(v)
            return rmatvec(X, w * matvec(X, v)) + lam * v

        d, steps, status = conjugate_gradient(hessian_times, grad, precond=precond,
                                              atol=min(0.1, np.sqrt(gn / g0)) * gn, max_iter=CG_MAX_STEPS,
                                              while_loop=host_while_loop)
        cg_total[0] += int(steps)
        return grad, (np.full(p, np.nan) if int(status) == Status.INDEFINITE else np.asarray(d))

    beta, it, _, status = damped_newton_minimize(F, gradient, cg_direction, beta, tol=tol, max_iter=max_iter,
                                                 grad_scale=g0, while_loop=host_while_loop)
    beta, status = np.asarray(beta), Status(int(status))
    rel = float(np.linalg.norm(gradient(beta))) / g0 if g0 > 0 else 0.0
    if not (status in (Status.LINE_SEARCH, Status.MAX_STEPS) and rel <= 1e-4):
        check_status(status, f"the {fam.name} ridge fit", f"at relative gradient {rel:.2g} after {int(it)} Newton steps",
                     "increase lam")
    return beta, {"newton_steps": int(it), "cg_steps": cg_total[0], "rel_grad": rel}


def _last_values(f, keep: int = 4):
    """f memoized on the values of its vector argument, for the last `keep` arguments (the Newton
    loop asks for X beta and the gradient at the same beta more than once: one pass over X each)."""
    memo: dict = {}

    def cached(beta):
        beta = np.asarray(beta, dtype=np.float64)
        key = beta.tobytes()
        if key not in memo:
            if len(memo) >= keep:
                memo.pop(next(iter(memo)))
            memo[key] = f(beta)
        return memo[key]

    return cached


# ----------------------------------------------------------------------------- plug-in signal
def plug_in_summary(X, beta):
    """The plug-in signal of in-memory features X (N x p, suite scale: ||x||^2 about 1) and fitted
    coefficients beta: the spectrum s of p Sigma_hat (Sigma_hat = X^T X / N; eigenvalues clipped at
    1e-12, then scaled to mean 1), the alignment theta_j = b_j^2 / gamma^2 of b = V^T beta with the
    eigenvectors V, and gamma^2 = (1/p) sum_j s_j b_j^2 (= beta^T Sigma_hat beta). The real datasets
    (`sims.runs.real`) and the network's after-kernel (`sims.network`) use it; `suite_summary` is its
    streamed version for a user's file (randomized spectra, the trace kept exactly)."""
    N, p = X.shape
    s, V = np.linalg.eigh(X.T @ X / N * p)
    s, V = np.clip(s[::-1], 1e-12, None), V[:, ::-1]
    s = s * p / s.sum()
    b = V.T @ np.asarray(beta)
    gamma2 = float(np.mean(s * b**2))
    return s, b**2 / gamma2, float(np.sqrt(gamma2))


def suite_summary(X, y, family: Family | str, spec: Spectrum, beta) -> dict:
    """Spectrum s (mean 1), alignment theta, gamma, sigma and scale c^2 in suite units (`family`: a
    `Family` or its name)."""
    n, p = X.shape
    c2 = spec.trace / n
    s = p * spec.eig / spec.trace
    eta = matvec(X, beta)
    gamma2 = float(eta @ eta) / n
    if gamma2 <= 0:
        raise InvalidParameterError("the coefficients give X beta = 0: no signal to plug in (check y or beta).")
    r = spec.V.shape[1]
    b = spec.V.T @ beta
    theta = np.zeros(p)
    theta[:r] = c2 * b**2 / gamma2
    covered = float(np.sum(spec.eig[:r] * b**2)) / n           # part of gamma^2 in the computed directions
    tail_mass = float(np.sum(spec.eig[r:]))
    if r < p and tail_mass > 0:
        theta[r:] = np.where(spec.eig[r:] > 0, c2 * max(gamma2 - covered, 0.0) / tail_mass * n / gamma2, 0.0)
    theta = theta / np.mean(s * theta)
    sigma = float(np.sqrt(np.mean((y - eta) ** 2))) if get_family(family).uses_sigma else 0.0
    return dict(s=s, theta=theta, gamma=float(np.sqrt(gamma2)), sigma=sigma, c2=float(c2))
