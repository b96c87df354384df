"""Theory speed: latency of one `theory.predict` and of a 200-point `theory.predict_curve`.

Targets (issue 3): one prediction under 50 ms after compilation; a 200-point curve under 2 s on
CPU. Each timing is the median of --repeat runs after a warm-up call that compiles (its time is
reported as the compilation cost). Also: predictions at a new signal strength gamma every call
(the quadrature grid is an argument of the compiled functions, so a new gamma is not a new
compilation) and a 200-point curve in gamma. Writes benchmarks/results/bench_theory.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from theory import predict, predict_curve
from theory import enable_float64  # noqa: E402

enable_float64()   # the kernels below are called directly

RESULTS = Path(__file__).parent / "results"
CASES = {
    "logistic": dict(family="logistic", delta=2.0, kappa=0.5, lam=0.1, gamma=1.0),
    "poisson": dict(family="poisson", delta=2.0, kappa=0.5, lam=0.1, gamma=0.5),
    "gaussian": dict(family="gaussian", delta=2.0, kappa=0.5, lam=0.1, gamma=1.0, sigma=0.5),
}
CURVES = {"delta": np.geomspace(0.6, 4.5, 200), "lam": np.geomspace(0.005, 5.0, 200),
          "kappa": np.linspace(0.02, 1.0, 200)}


def first_time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_time(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args(argv)
    out = {"first_call_s": {}, "predict_ms": {}, "predict_new_gamma_ms": {}, "curve_200_s": {}}
    for name, kw in CASES.items():
        out["first_call_s"][name] = first_time(lambda: predict(**kw))
        # vary lam slightly between calls so that nothing is cached at the Python level
        lams = iter(np.linspace(0.1, 0.11, 10 * args.repeat + 10))
        out["predict_ms"][name] = 1e3 * median_time(lambda: predict(**{**kw, "lam": float(next(lams))}), args.repeat)
    gammas = iter(np.linspace(0.7, 1.3, 10 * args.repeat + 10))
    out["predict_new_gamma_ms"]["logistic"] = 1e3 * median_time(
        lambda: predict(**{**CASES["logistic"], "gamma": float(next(gammas))}), args.repeat)
    curves = {**CURVES, "gamma": np.linspace(0.2, 3.0, 200)}
    for vary, values in curves.items():
        kw = CASES["logistic"]
        out["curve_200_s"][vary] = median_time(lambda: predict_curve(vary, values, **kw), max(2, args.repeat // 4))
    print("theory latency (median after compilation; first call includes the compilation):")
    for name, ms in out["predict_ms"].items():
        print(f"  predict, {name:<9s} {ms:7.1f} ms   (target < 50 ms; first call {out['first_call_s'][name]:.1f} s)")
    print(f"  predict, logistic, new gamma each call {out['predict_new_gamma_ms']['logistic']:7.1f} ms")
    for vary, s in out["curve_200_s"].items():
        print(f"  200-point curve in {vary:<6s} {s:6.2f} s    (target < 2 s)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_theory.json").write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
