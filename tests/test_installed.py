"""The project installed (not editable) into a fresh virtualenv works from outside the checkout:
`trak-sim predict`, `trak-sim simulate --p 50` and `trak-sim figures --only fig_scatter --out DIR`
(which needs the figure specs shipped as package data). Slow: it installs JAX and the rest."""

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_non_editable_install_runs_outside_the_repository(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + [str(ROOT)], check=True, cwd=tmp_path, timeout=1800)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRAK_SIM_FIGURES_DIR",
                                                            "TRAK_SIM_RESULTS_DIR")}
    exe = str(bin_dir / "trak-sim")

    def run(*args):
        out = subprocess.run([exe, *args], cwd=work, env=env, capture_output=True, text=True, timeout=1200)
        assert out.returncode == 0, f"trak-sim {' '.join(args)} failed:\n{out.stderr[-2000:]}"
        return out.stdout

    where = subprocess.run([str(bin_dir / "python"), "-c", "import theory, sims, figures; print(figures.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout
    assert str(ROOT) not in where, f"imported from the checkout, not the install: {where}"
    pred = json.loads(run("predict", "--json"))
    assert 0 < pred["estimators"]["trak"]["spearman"] < 1
    sim = json.loads(run("simulate", "--p", "50", "--reps", "1", "--n-test", "5", "--json"))
    assert sim["config"]["p"] == 50
    out_dir = tmp_path / "figs"
    run("figures", "--only", "fig_scatter", "--out", str(out_dir), "--no-progress")
    png = out_dir / "fig_scatter.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(sys.version, where)
