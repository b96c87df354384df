"""A sweep killed mid-way (SIGINT or SIGKILL) resumes without recomputing or losing points, and
its table equals that of an uninterrupted run."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sims.runs.sweep import run_sweep

SPEC = """
name = "interrupt"
[defaults]
family = "logistic"
p = 16
n_test = 3
reps = 10
[grid]
delta = [2.0]
kappa = [0.25, 0.5]
"""
TOTAL = 20
STABLE_COLUMNS = ("config_hash", "rep", "estimator", "metric", "value", "se", "n_values")
# The interrupted run is the real CLI with two changes. Each unit is slowed by 0.3 s: warm, a
# unit of this spec takes ~20 ms, so the whole run could end before a signal sent after its
# third point arrives. SIGINT gets Python's handler even when this suite runs as a background
# job: a shell starts background jobs with SIGINT ignored, the child inherits that, and Python
# then leaves SIGINT ignored (the run would complete, exit 0, and the test fail for nothing).
SLOWED_CLI = ("import signal, sys, time; signal.signal(signal.SIGINT, signal.default_int_handler); "
              "import sims.runs.sweep as s; compute = s.compute_unit; "
              "s.compute_unit = lambda *a: (time.sleep(0.3), compute(*a))[1]; "
              "from sims.cli import main; sys.exit(main(sys.argv[1:]))")


def _sweep(spec, out, devices, slowed=False):
    start = ["-c", SLOWED_CLI] if slowed else ["-m", "sims.cli"]
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return subprocess.Popen([sys.executable, *start, "sweep", str(spec), "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _table(out):
    with open(Path(out) / "table.csv", newline="") as f:
        return sorted(tuple(row[c] for c in STABLE_COLUMNS) for row in csv.DictReader(f))


def _points(out):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (Path(out) / "points").glob("*.json")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    spec = d / "spec.toml"
    spec.write_text(SPEC)
    run_sweep(spec, d / "out", progress=False)        # uninterrupted, in this process
    return _table(d / "out")


# SIGINT with two host devices: the sweep runs one unit per device on worker threads, and must
# wait for them before exiting (else XLA aborts the process); SIGKILL with one device.
@pytest.mark.parametrize("sig, devices", [(signal.SIGINT, 2), (signal.SIGKILL, 1)])
def test_interrupted_sweep_resumes_exactly(tmp_path, reference, sig, devices):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    proc = _sweep(spec, out, devices, slowed=True)
    deadline = time.time() + 300
    while len(_points(out)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(sig)
    code = proc.wait(timeout=120)
    err = proc.stderr.read()
    assert code == (130 if sig == signal.SIGINT else -signal.SIGKILL), (code, len(_points(out)), err[-2000:])
    if sig == signal.SIGINT:
        assert "interrupted" in err
        assert (out / "table.csv").exists()      # the table was rebuilt from the finished points
    before = _points(out)
    assert 3 <= len(before) < TOTAL
    for name, (_, data) in before.items():       # every point on disk is complete
        assert data.strip().endswith(b"}")

    proc = _sweep(spec, out, devices)
    assert proc.wait(timeout=600) == 0
    summary = proc.stdout.read()
    assert f"{TOTAL - len(before)} points computed, {len(before)} cached" in summary
    after = _points(out)
    assert len(after) == TOTAL
    assert all(after[name] == before[name] for name in before)      # not recomputed, not rewritten
    assert not list((out / "points").glob(".*.tmp"))
    assert _table(out) == reference                                  # nothing lost or duplicated
    used = {json.loads(data)["meta"]["device_id"] for _, data in after.values()}
    assert used == set(range(devices))            # with 2 devices both ran units, equal bit for bit
