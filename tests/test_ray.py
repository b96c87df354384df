"""`trak-sim sweep --executor ray`: points computed as Ray tasks land in the same store and cache.

Slow (`make validate`, which installs the optional extra): starting a local Ray instance takes
~30 s, and the extra is a large install that `make test` skips."""

import pytest

pytestmark = pytest.mark.slow

from sims.runs.store import read_table
from sims.runs.sweep import parse_spec, run_sweep

RAW = {"name": "ray", "defaults": {"family": "logistic", "p": 12, "n_test": 2, "reps": 2},
       "grid": {"kappa": [0.25, 0.5]}}


def test_ray_executor_matches_local_and_shares_the_cache(tmp_path):
    ray = pytest.importorskip("ray", reason="the optional extra trak-sim[ray] is not installed")
    spec = parse_spec(RAW)
    local = run_sweep(spec, tmp_path / "local", progress=False)   # first: Ray workers then load its kernels
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_sweep(spec, tmp_path / "ray", progress=False, executor="ray")
        assert remote.computed == 4
        stable = lambda rows: sorted((r["config_hash"], r["rep"], r["estimator"], r["metric"], r["value"])  # noqa: E731
                                     for r in rows)
        assert stable(read_table(remote.table)) == stable(read_table(local.table))
        again = run_sweep(spec, tmp_path / "ray", progress=False, executor="ray")
        assert again.computed == 0 and again.cached == 4          # the cache is shared
    finally:
        ray.shutdown()
