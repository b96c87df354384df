"""Several JAX devices: a replicate's exact-LOO lanes are sharded over them (jax.sharding), a
sweep runs its units one per device; results equal those of one device."""

import json
import os
import subprocess
import sys

import numpy as np

from sims.sweep import parse_spec, run_sweep

CASE = dict(family="logistic", p=40, delta=2.0, kappa=0.5, lam=0.03, n_test=4, reps=1, seed=3)
SWEEP = {"name": "devices", "defaults": {"family": "logistic", "p": 12, "n_test": 2, "reps": 3},
         "grid": {"kappa": [0.25, 0.5]}}
SCRIPT = r"""
import json, sys, jax, numpy as np, sims
from sims.simulate import validate_sim, run_replicate
from sims.sweep import parse_spec, run_sweep
case, sweep, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
r = run_replicate(validate_sim(**case), 0, keep_influence=True)
run_sweep(parse_spec(sweep), out, progress=False)
print(json.dumps({"devices": len(jax.devices()),
                  "influence": {k: np.asarray(v).tolist() for k, v in r.influence.items()}}))
"""


def _in_this_process() -> dict:
    import jax

    from sims.simulate import run_replicate, validate_sim
    r = run_replicate(validate_sim(**CASE), 0, keep_influence=True)
    return {"devices": len(jax.devices()), "influence": {k: np.asarray(v) for k, v in r.influence.items()}}


def _run(devices: int, out) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(CASE), json.dumps(SWEEP), str(out)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _points(out) -> dict:
    return {p.name: json.loads(p.read_text()) for p in (out / "points").glob("*.json")}


def test_two_host_devices_give_the_same_results_as_one(tmp_path):
    one, two = _in_this_process(), _run(2, tmp_path / "two")    # this process has one CPU device
    assert one["devices"] == 1 and two["devices"] == 2
    for key in ("loo", "if", "ns", "trak"):
        a, b = np.asarray(one["influence"][key]), np.asarray(two["influence"][key])
        # equal up to the rounding of differently blocked matrix products (documented tolerance)
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)

    # a sweep runs whole units on each device: the same numbers, bit for bit
    run_sweep(parse_spec(SWEEP), tmp_path / "one", progress=False)
    ones, twos = _points(tmp_path / "one"), _points(tmp_path / "two")
    assert len(twos) == 6 and ones.keys() == twos.keys()
    assert {p["meta"]["device_id"] for p in twos.values()} == {0, 1}     # both devices ran units
    assert all(twos[h]["metrics"] == ones[h]["metrics"] for h in ones)
