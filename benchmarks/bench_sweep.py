"""Sweep throughput: points (configuration x replicate) per second for a quick figure preset.

Runs the sweep of figures/specs/<spec>.toml (default fig_corr_vs_delta, preset quick) into a fresh
temporary store twice in one process: cold (includes the jit compilation of every new shape)
and warm (same shapes, another seed, compiled kernels reused). Writes
benchmarks/results/bench_sweep.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import jax

from sims.runs.sweep import Spec, load_spec, run_sweep
from theory import enable_float64  # noqa: E402

enable_float64()   # the kernels below are called directly

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="fig_corr_vs_delta")
    ap.add_argument("--preset", default="quick")
    args = ap.parse_args(argv)
    spec = load_spec(ROOT / "figures" / "specs" / f"{args.spec}.toml", preset=args.preset)
    out = {"spec": args.spec, "preset": args.preset, "device": jax.devices()[0].platform,
           "devices": len(jax.devices())}
    for label, shift in (("cold", 0), ("warm", 1000)):
        shifted = Spec(spec.name, spec.description,
                       tuple(replace(c, seed=c.seed + shift) for c in spec.configs), spec.raw)
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            summary = run_sweep(shifted, d, progress=False)
            wall = time.perf_counter() - t0
        out[label] = {"points": summary.computed, "wall_s": wall, "points_per_s": summary.computed / wall}
        print(f"sweep {args.spec} ({args.preset}), {label}: {summary.computed} points in {wall:.1f} s "
              f"= {summary.computed / wall:.2f} points/s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_sweep.json").write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
