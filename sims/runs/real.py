"""Real data: exact LOO versus IF, NS and TRAK on datasets shipped inside scikit-learn.

No download at run time: the datasets are files of the scikit-learn wheel (optional extra
`trak-sim[data]`). Features are standardized (constant columns dropped) and divided by sqrt(p),
so that rows have squared norm about 1 as in docs/conventions.md; n/p is varied by subsampling the
training points, test points are drawn from the remaining rows.

For the comparison with theory each dataset is summarized by the ingredients of the
general-covariance theory (`theory.covariance`): the empirical spectrum s of p Sigma_hat (mean 1),
and a plug-in truth beta_plug fitted on all rows (ridge GLM with a small penalty), giving the
signal strength gamma^2 = beta_plug^T Sigma_hat beta_plug and the alignment theta_j of beta_plug
with the eigenvectors of Sigma_hat (and, for ridge regression, the residual noise sigma^2). The
theory then describes a Gaussian design with that covariance and a truth with that alignment.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import numpy as np

from theory.errors import InvalidParameterError
from theory.families import get_family
from theory.numerics import enable_float64

from ..engine.data import Data
from ..engine.fit import check_fit, newton_fit
from .features import plug_in_summary

DATASETS = {
    "breast_cancer": ("logistic", "malignant vs benign tumours (569 x 30)"),
    "digits": ("logistic", "8 x 8 digit images, label >= 5 (1797 x 61 non-constant pixels)"),
    "digits_ridge": ("gaussian", "8 x 8 digit images, the label as a number (1797 x 61)"),
    "diabetes": ("gaussian", "disease progression (442 x 10)"),
}


@dataclass(frozen=True)
class RealData:
    name: str
    family: str
    X: np.ndarray          # (N, p) standardized / sqrt(p)
    y: np.ndarray
    spectrum: np.ndarray   # eigenvalues of p Sigma_hat, mean 1, descending
    theta: np.ndarray      # alignment of beta_plug with the eigenvectors, (1/p) sum s theta = 1
    gamma: float           # sqrt(beta_plug^T Sigma_hat beta_plug)
    sigma: float           # residual noise (gaussian family), else 0


def load(name: str, plug_in_lam: float = 0.1) -> RealData:
    """Load and summarize one dataset (see module docstring); kept for the process (a sweep over
    n/p and k/p loads each dataset once)."""
    enable_float64()
    if name not in DATASETS:
        raise InvalidParameterError(f"dataset must be one of {', '.join(DATASETS)}, got {name!r}.")
    return _load(name, float(plug_in_lam))


@functools.lru_cache(maxsize=8)
def _load(name: str, plug_in_lam: float) -> RealData:
    try:
        from sklearn import datasets
    except ImportError:
        raise InvalidParameterError("real datasets need scikit-learn: pip install 'trak-sim[data]'.") from None
    family = DATASETS[name][0]
    if name == "breast_cancer":
        raw = datasets.load_breast_cancer()
        Z, y = raw.data, raw.target.astype(float)
    elif name in ("digits", "digits_ridge"):
        raw = datasets.load_digits()
        Z, y = raw.data, raw.target.astype(float)
        y = (y >= 5).astype(float) if name == "digits" else (y - y.mean()) / y.std()
    else:
        raw = datasets.load_diabetes()
        Z, y = raw.data, raw.target.astype(float)
        y = (y - y.mean()) / y.std()
    Z = Z[:, Z.std(axis=0) > 0]
    Z = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    N, p = Z.shape
    X = Z / np.sqrt(p)
    fam = get_family(family)
    fit = check_fit(newton_fit(jax.device_put(X), jax.device_put(y), plug_in_lam,
                               family=fam), X, y, plug_in_lam, fam)
    beta = np.asarray(fit.beta)
    s, theta, gamma = plug_in_summary(X, beta)
    sigma = float(np.sqrt(np.mean((y - X @ beta) ** 2))) if fam.uses_sigma else 0.0
    for a in (X, y, s, theta):
        a.setflags(write=False)                    # shared by every caller of the cached load
    return RealData(name, family, X, y, s, theta, gamma, sigma)


def subsample(data: RealData, key, n: int, n_test: int) -> Data:
    """n training rows and n_test test rows, disjoint, uniformly at random."""
    N = data.X.shape[0]
    if n + n_test > N:
        raise InvalidParameterError(f"{data.name} has {N} rows, fewer than n + n_test = {n + n_test}.")
    perm = np.asarray(jax.random.permutation(key, N))
    tr, te = perm[:n], perm[n:n + n_test]
    # jax.device_put, np.zeros: jnp.asarray / jnp.zeros would compile a program per shape
    return Data(jax.device_put(data.X[tr]), jax.device_put(data.y[tr]), jax.device_put(data.X[te]),
                jax.device_put(np.zeros(data.X.shape[1])))


def run_real(name: str, *, delta: float, kappa: float, lam: float = 0.1, lam_trak: float = 0.0,
             n_proj: int = 1, reps: int = 10, n_test: int = 20, seed: int = 0) -> dict:
    """Exact LOO versus IF, NS and TRAK on `reps` random subsamples of a real dataset, with the
    theory evaluated at the dataset's empirical spectrum and plug-in truth. Returns
    {"config", "simulation": {est: {metric: {mean, se}}}, "theory": {est: {metric: value}}}."""
    from theory import predict_spectrum

    from ..engine.metrics import mean_and_se
    from ..engine.simulate import analyze, replicate_key, validate_sim

    data = load(name)
    N, p = data.X.shape
    sp = validate_sim(family=data.family, p=p, delta=delta, kappa=kappa, lam=lam, lam_trak=lam_trak,
                      gamma=data.gamma, sigma=data.sigma, n_proj=n_proj, n_test=n_test, reps=reps, seed=seed)
    results = []
    for rep in range(reps):
        k_data, k_proj = jax.random.split(replicate_key(seed, rep))
        results.append(analyze(sp, subsample(data, k_data, sp.n, n_test), k_proj))
    simulation = {e: {m: dict(zip(("mean", "se"), mean_and_se(np.stack([r.metrics[e][m] for r in results]))))
                      for m in results[0].metrics[e]} for e in results[0].metrics}
    theory_ = predict_spectrum(data.spectrum, data.theta, family=data.family, delta=delta, kappa=kappa,
                               lam=lam, lam_trak=lam_trak, gamma=data.gamma, sigma=data.sigma, n_proj=n_proj)
    config = {"dataset": name, "family": data.family, "N": N, "p": p, "n": sp.n, "k": sp.k, "delta": delta,
              "kappa": kappa, "lam": lam, "lam_trak": lam_trak, "n_proj": n_proj, "reps": reps,
              "gamma_plugin": data.gamma, "sigma_plugin": data.sigma, "d_A": theory_["constants"]["d_A"]}
    return {"config": config, "simulation": simulation, "theory": theory_["estimators"]}
