"""Several JAX devices: a replicate's exact-LOO lanes are sharded (jax.sharding); results equal
one device. (A sweep over several devices, one unit per device, is tested in test_interrupt.py.)"""

import json
import os
import subprocess
import sys

import numpy as np

CASE = dict(family="logistic", p=40, delta=2.0, kappa=0.5, lam=0.03, n_test=4, reps=1, seed=3)
SCRIPT = r"""
import json, sys, jax, numpy as np, sims
from sims.engine.simulate import validate_sim, run_replicate
r = run_replicate(validate_sim(**json.loads(sys.argv[1])), 0, keep_influence=True)
print(json.dumps({"devices": len(jax.devices()),
                  "influence": {k: np.asarray(v).tolist() for k, v in r.influence.items()}}))
"""


def _in_this_process() -> dict:
    import jax

    from sims.engine.simulate import run_replicate, validate_sim
    r = run_replicate(validate_sim(**CASE), 0, keep_influence=True)
    return {"devices": len(jax.devices()), "influence": {k: np.asarray(v) for k, v in r.influence.items()}}


def _run(devices: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(CASE)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_host_devices_give_the_same_influences_as_one():
    one, two = _in_this_process(), _run(2)     # the test process has the one default CPU device
    assert one["devices"] == 1 and two["devices"] == 2
    for key in ("loo", "if", "ns", "trak"):
        a, b = np.asarray(one["influence"][key]), np.asarray(two["influence"][key])
        # equal up to the rounding of differently blocked matrix products (documented tolerance);
        # exact LOO's float32 iterations round with the blocking more: equal to its tolerance (1e-10)
        atol = 1e-10 * np.abs(a).max() if key == "loo" else 1e-14
        np.testing.assert_allclose(b, a, rtol=0 if key == "loo" else 1e-12, atol=atol)
