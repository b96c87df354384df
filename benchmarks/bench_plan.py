"""Time and peak memory of `trak-sim plan` on a synthetic float32 feature file.

Writes X.npy (n x p float32, power-law spectrum s_j ~ j^-1, memory-mapped when read) and y.npy
(logistic labels) to a temporary folder, then runs the CLI in a fresh process and reports the
wall time and its peak resident memory (ru_maxrss of the child).

    .venv/bin/python benchmarks/bench_plan.py [--n 20000] [--p 5000] [--spectrum auto|exact|randomized]
        [--top 500] [--method conditional|gaussian|both] [--truth ns|loo|auto] [--save FILE.json]

It prints the time of each step (the plan's `inputs.timings`) and the recommendation per M; --save
keeps the whole JSON (e.g. to compare --spectrum randomized with exact on the same file).

Streaming memory (randomized path, min(n, p) > 2000): besides the memory map, the largest arrays
are the p x l sketch and its products (l = 512: 3 p l doubles), one row block (128 MiB of float64
plus its float32 rows), the p x 500 eigenvectors and O(n + p) vectors; at n = 100000, p = 20000:
3 x 20000 x 512 x 8 B = 0.25 GiB + 0.2 GiB + 0.08 GiB + ~0.3 GiB for the theory, far below 24 GiB
(the file itself, 8 GB, is paged in and out by the OS).
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--p", type=int, default=5000)
    ap.add_argument("--spectrum", default="auto")
    ap.add_argument("--lam", type=float, default=1.0)
    ap.add_argument("--method", default="conditional", choices=("conditional", "gaussian", "both"))
    ap.add_argument("--truth", default="ns", choices=("auto", "loo", "ns"))
    ap.add_argument("--top", type=int, default=None)
    ap.add_argument("--save", default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        X = np.lib.format.open_memmap(Path(tmp) / "X.npy", mode="w+", dtype=np.float32, shape=(a.n, a.p))
        scale = (np.arange(1, a.p + 1) ** -0.5).astype(np.float32)
        beta = rng.standard_normal(a.p) * scale * 3.0
        eta = np.empty(a.n)
        for i in range(0, a.n, 2000):
            B = rng.standard_normal((min(2000, a.n - i), a.p), dtype=np.float32) * scale
            X[i:i + B.shape[0]] = B
            eta[i:i + B.shape[0]] = B @ beta / np.sqrt(np.sum(scale ** 2))
        X.flush()
        del X
        y = (rng.random(a.n) < 1 / (1 + np.exp(-eta))).astype(np.float64)
        np.save(Path(tmp) / "y.npy", y)
        cmd = [sys.executable, "-m", "sims.cli", "plan", "--family", "logistic", "--lam", str(a.lam),
               "--features", str(Path(tmp) / "X.npy"), "--labels", str(Path(tmp) / "y.npy"),
               "--target", "0.8", "--spectrum", a.spectrum, "--method", a.method, "--truth", a.truth, "--json"]
        if a.top is not None:
            cmd += ["--top", str(a.top)]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20   # KiB -> GiB
        if out.returncode != 0:
            print("\n".join(out.stderr.splitlines()[-5:]))
        else:
            res = json.loads(out.stdout)
            if a.save:
                Path(a.save).write_text(out.stdout)
            timings = res["inputs"].get("timings", {})
            print("timings: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
            print(f"spectrum: {res['inputs'].get('spectrum_method')}")
            for rec in res["recommendation"]:
                print(f"  M = {rec['n_proj']}: k = {rec['k']}, predicted {rec['predicted']}"
                      + (" (beyond the tail model)" if rec.get("beyond_tail_model") else ""))
        print(f"plan --method {a.method} --truth {a.truth} n={a.n} p={a.p} float32 ({a.n * a.p * 4 / 2**30:.2f} GiB file), "
              f"spectrum {a.spectrum}: "
              f"wall {wall:.1f} s, peak RSS {peak:.2f} GiB, exit {out.returncode}")


if __name__ == "__main__":
    main()
