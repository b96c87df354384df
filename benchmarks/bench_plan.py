"""Time and peak memory of `trak-sim plan` on a synthetic float32 feature file.

Writes X.npy (n x p float32, power-law spectrum s_j ~ j^-1, memory-mapped when read) and y.npy
(logistic labels) to a temporary folder, then runs the CLI in a fresh process and reports the
wall time and its peak resident memory (ru_maxrss of the child).

    .venv/bin/python benchmarks/bench_plan.py [--n 20000] [--p 5000] [--spectrum auto|exact|randomized]
        [--top 500] [--method conditional|gaussian|both] [--truth ns|loo|auto] [--save FILE.json]

It prints the time of each step (the plan's `inputs.timings`) and the recommendation per M; --save
keeps the whole JSON (e.g. to compare --spectrum randomized with exact on the same file). --floor
instead times, in this process on random float64 rows of the same shape, the kernels the exact path
cannot avoid (`floor`): the least time any float64 implementation of it takes on this machine.

Peak memory is reported twice: the child's peak RSS, which counts the pages of the memory-mapped
file it has touched (reclaimable by the OS), and its peak anonymous memory (RssAnon, polled), what
the plan itself holds (`sims.runs.plan_conditional.conditional_memory` estimates it beforehand).
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


def floor(n: int, p: int, T: int = 200, evaluations: int = 45) -> None:
    """The float64 kernels that the exact path cannot avoid at this (n, p), timed here on random
    rows: G = X^T X (SYRK, n p^2 flops), eigh(G) (~9 p^3), X U (2 n p^2), H = X^T diag(w) X (n p^2) with
    its Cholesky factor (p^3 / 3) and one triangular solve against the rows (n p^2: leverages, IF, NS),
    and one evaluation's product for the law's means, X~ [R X0~^T, R^2 X0~^T] (4 T n p), times the
    `evaluations` a plan needs. Their sum is the least time the exact path can take on this machine."""
    from scipy.linalg import solve_triangular

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, p)) / np.sqrt(p)
    w = rng.random(n)
    V = rng.standard_normal((p, 2 * T))
    times = {}

    def timed(name, f):
        t0 = time.perf_counter()
        out = f()
        times[name] = time.perf_counter() - t0
        return out

    G = timed("X^T X", lambda: X.T @ X)
    _, U = timed("eigh", lambda: np.linalg.eigh(G))
    timed("X U", lambda: X @ U)
    G = U = None              # free them before the next kernels
    Xw = X * np.sqrt(w)[:, None]
    H = timed("X^T W X", lambda: Xw.T @ Xw)
    Xw = None
    H[np.diag_indices(p)] += 1.0
    C = timed("cholesky", lambda: np.linalg.cholesky(H))
    timed("triangular solve", lambda: solve_triangular(C, X.T, lower=True))
    fixed = sum(times.values())
    timed("one evaluation's means", lambda: X @ V)
    means = times["one evaluation's means"]
    print("float64 floor of the exact path, " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    print(f"n={n} p={p}: {fixed + evaluations * means:.1f} s ({fixed:.1f} s once, then {means:.2f} s for each "
          f"of {evaluations} evaluations of the means)")


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
    ap.add_argument("--floor", action="store_true",
                    help="time only the float64 kernels the exact path cannot avoid (in process, random rows)")
    a = ap.parse_args()
    if a.floor:
        return floor(a.n, a.p)
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
        with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
            child = subprocess.Popen(cmd, stdout=so, stderr=se, text=True)
            anon = _peak_anonymous(child)
            so.seek(0), se.seek(0)
            out = subprocess.CompletedProcess(cmd, child.returncode, so.read(), se.read())
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
                what = (f"k = {rec['k']}, predicted {rec['predicted']}" if rec["k"] is not None else
                        f"unreachable, ceiling {rec['ceiling']} at k = {rec['ceiling_k']}")
                print(f"  M = {rec['n_proj']}: {what}" + (" (beyond the tail model)" if rec.get("beyond_tail_model") else ""))
        print(f"plan --method {a.method} --truth {a.truth} n={a.n} p={a.p} float32 ({a.n * a.p * 4 / 2**30:.2f} GiB file), "
              f"spectrum {a.spectrum}: "
              f"wall {wall:.1f} s, peak RSS {peak:.2f} GiB (of which anonymous memory {anon:.2f} GiB; the rest "
              f"is the file's pages, which the OS reclaims), exit {out.returncode}")


def _peak_anonymous(child, every: float = 0.2) -> float:
    """Peak anonymous resident memory of a running child (GiB; RssAnon of /proc/PID/status, polled):
    what it holds itself, without the pages of the memory-mapped file that RSS also counts."""
    peak = 0
    while child.poll() is None:
        try:
            with open(f"/proc/{child.pid}/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            break
        time.sleep(every)
    child.wait()
    return peak / 2**20


if __name__ == "__main__":
    main()
