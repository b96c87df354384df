"""Real datasets (scikit-learn, no download): loading, subsampling, exact LOO, theory at the spectrum."""

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the optional extra trak-sim[data] (scikit-learn) is not installed")

from sims.runs.real import DATASETS, load, run_real  # noqa: E402
from theory.errors import InvalidParameterError  # noqa: E402


@pytest.mark.parametrize("name", list(DATASETS))
def test_datasets_are_standardized_and_summarized(name):
    d = load(name)
    N, p = d.X.shape
    np.testing.assert_allclose((d.X**2).sum(1).mean(), 1.0, rtol=1e-10)     # rows have norm^2 ~ 1
    np.testing.assert_allclose(d.spectrum.mean(), 1.0)
    np.testing.assert_allclose(np.mean(d.spectrum * d.theta), 1.0)
    assert d.gamma > 0 and d.family == DATASETS[name][0]


def test_run_real_gives_simulation_and_theory():
    r = run_real("diabetes", delta=2.0, kappa=0.5, lam=0.1, lam_trak=0.01, reps=2, n_test=5)
    assert r["config"]["n"] == 20 and r["config"]["k"] == 5
    assert r["simulation"]["ns"]["spearman"]["mean"] > 0.95
    for est in ("if", "ns", "trak"):
        assert np.isfinite(r["theory"][est]["pearson"]) and np.isfinite(r["simulation"][est]["pearson"]["mean"])


def test_unknown_dataset_is_refused():
    with pytest.raises(InvalidParameterError, match="dataset must be one of"):
        load("mnist")
