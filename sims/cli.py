"""Command line: `trak-sim predict|simulate|sweep|compare|figures ...` (see `trak-sim --help`).

Every subcommand uses the persistent JAX compilation cache (`theory.jaxcache`): a second call
loads its compiled programs instead of compiling them again. Heavy modules (the simulation
engine, scipy, matplotlib, tqdm) are imported only by the subcommands that need them.

Exit codes: 0 success; 1 `compare` found a disagreement; 2 invalid input, an estimator that
does not exist for these parameters, or a problem too large for the memory or the number range
(one sentence on stderr); 3 a solver that did not converge; 130 interrupted. Any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from theory.errors import EstimatorDoesNotExistError, InvalidParameterError, NotConvergedError
from theory.jaxcache import enable_compilation_cache

EXIT_INVALID, EXIT_NOT_CONVERGED, EXIT_INTERRUPTED = 2, 3, 130


class UsageError(Exception):
    """Raised instead of argparse's usage-and-exit, so that errors are one sentence."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)   # "--n 5" must not silently mean "--n-proj 5"
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help').")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the proportional-regime model (names match the Python API)."""
    g = parser.add_argument_group("model (DESIGN.md §2)")
    g.add_argument("--family", default="logistic", choices=("gaussian", "logistic", "poisson"),
                   help="GLM family (default: %(default)s)")
    g.add_argument("--delta", type=_float, default=2.0, help="n/p, samples per parameter (default: %(default)s)")
    g.add_argument("--kappa", type=_float, default=0.5,
                   help="k/p, projection size per parameter, 0 < kappa <= 1 (default: %(default)s)")
    g.add_argument("--lam", type=_float, default=0.1, help="ridge penalty of the fit, >= 0 (default: %(default)s)")
    g.add_argument("--lam-trak", type=_float, default=0.0,
                   help="ridge added to TRAK's Gram matrix P^T X^T X P, >= 0 (default: %(default)s)")
    g.add_argument("--gamma", type=_float, default=1.0,
                   help="signal strength: beta* ~ N(0, gamma^2 I) (default: %(default)s)")
    g.add_argument("--sigma", type=_float, default=0.5,
                   help="noise s.d. of the gaussian family (default: %(default)s)")
    g.add_argument("--n-proj", type=_int, default=1,
                   help="M, number of independent projections averaged by TRAK (default: %(default)s)")
    g.add_argument("--covariance", default="isotropic", choices=("isotropic", "power", "spiked", "ar1"),
                   help="feature spectrum: isotropic, power law s_j ~ j^-a, three spikes, AR(1) "
                        "(default: %(default)s)")
    g.add_argument("--cov-param", type=_float, default=0.0,
                   help="its parameter: decay exponent a, spike size, or AR(1) rho (default: %(default)s)")
    g.add_argument("--alignment", type=_float, default=0.0,
                   help="alignment of beta* with the spectrum: theta_j ~ s_j^alignment (default: %(default)s)")
    g.add_argument("--variants", action="store_true",
                   help="also the corrected TRAK estimators: trak_w (Hessian-weighted Gram), trak_lev "
                        "(leave-one-out factor in the projected space), trak_wlev (both)")
    g.add_argument("--projection", default="gaussian", choices=("gaussian", "rademacher", "identity"),
                   help="entries of P: N(0,1/k), +-1/sqrt(k), or P = I (no projection; kappa = 1) "
                        "(default: %(default)s)")


def model_kwargs(args) -> dict:
    return dict(family=args.family, delta=args.delta, kappa=args.kappa, lam=args.lam,
                lam_trak=args.lam_trak, gamma=args.gamma, sigma=args.sigma, n_proj=args.n_proj,
                projection=args.projection, variants=args.variants, covariance=args.covariance,
                cov_param=args.cov_param, alignment=args.alignment)


# ------------------------------------------------------------------------------------ predict
def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict", help="proportional-regime predictions of IF, NS (ALO) and TRAK versus exact LOO",
        description="Theory (n, p -> infinity, n/p = delta, k/p = kappa): Pearson and Spearman "
                    "correlation with exact LOO, relative error and best-fit scale of IF, NS (ALO) "
                    "and TRAK, plus the constants they are built from (docs/theory.md).")
    add_model_arguments(p)
    p.add_argument("--p", type=_int, default=None,
                   help="dimension of a non-isotropic spectrum (required then: such spectra depend on p)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    p.set_defaults(run=_run_predict)


def _run_predict(args) -> int:
    from theory import predict

    result = predict(**model_kwargs(args), p=args.p)
    print(json.dumps(result, indent=2) if args.json else format_prediction(result))
    return 0


def _describe_covariance(c: dict) -> str:
    if c.get("covariance", "isotropic") == "isotropic":
        return ""
    return f" | covariance {c['covariance']}({c['cov_param']:g}), alignment {c['alignment']:g}"


def format_prediction(result: dict) -> str:
    c, k = result["config"], result["constants"]
    proj = "P = I" if c["projection"] == "identity" else f"kappa={c['kappa']:g} ({c['projection']}) M={c['n_proj']}"
    lines = [f"{c['family']}: delta={c['delta']:g} lam={c['lam']:g} gamma={c['gamma']:g}"
             + (f" sigma={c['sigma']:g}" if c["family"] == "gaussian" else "")
             + f" | TRAK: {proj} lam_trak={c['lam_trak']:g}" + _describe_covariance(c),
             "estimator  " + "".join(f"{m:>11s}" for m in ("pearson", "spearman", "rel_error", "scale"))]
    for name, row in result["estimators"].items():
        lines.append(f"{name.upper():<11s}" + "".join(f"{row[m]:11.4f}" for m in ("pearson", "spearman", "rel_error", "scale")))
    lines.append(f"constants: c={k['c']:.4g} m={k['m']:.4g} q={k['q']:.4g} E[w]={k['e_w']:.4g} "
                 f"mean leverage={k['mean_leverage']:.4g} tau(A^2)={k['tau_A2']:.4g} mu={k['mu']:.4g} "
                 f"c_T={k['c_T']:.4g} tau(AB)={k['tau_AB']:.4g} tau(B_bar^2)={k['tau_Bbar2']:.4g}"
                 + (f" d_A={k['d_A']:.4g} d_T={k['d_T']:.4g}" if "d_A" in k else ""))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- simulate
def _add_simulate(sub) -> None:
    p = sub.add_parser(
        "simulate", help="exact LOO, IF, NS (ALO) and TRAK on simulated data, scored against LOO",
        description="Simulate ridge GLMs in the proportional regime: fit, exact leave-one-out for "
                    "every training point, IF, NS (ALO) and TRAK influences on n_test test points, "
                    "then Pearson/Spearman correlation, relative error, best-fit scale and top-m "
                    "overlap with LOO (mean ± standard error over test points and replicates).")
    add_model_arguments(p)
    g = p.add_argument_group("simulation")
    g.add_argument("--p", type=_int, default=200, help="number of features; n = round(delta p) (default: %(default)s)")
    g.add_argument("--n-test", type=_int, default=20, help="test points per replicate (default: %(default)s)")
    g.add_argument("--reps", type=_int, default=2, help="independent replicates (default: %(default)s)")
    g.add_argument("--seed", type=_int, default=0, help="integer seed of all randomness (default: %(default)s)")
    g.add_argument("--design", default="gaussian", choices=("gaussian", "rademacher", "student_t"),
                   help="entries of the features (covariance I/p): Gaussian, +-1, or Student-t with 5 "
                        "d.f. (heavy tails); the theory assumes Gaussian (default: %(default)s)")
    g.add_argument("--top-m", type=_int, default=None, help="m of the top-m overlap (default: 5%% of n)")
    g.add_argument("--lds-subsets", type=_int, default=0,
                   help="J > 0 adds the linear datamodeling score over J random half-subsets (J refits "
                        "per replicate; 0 = off) (default: %(default)s)")
    g.add_argument("--tol", type=_float, default=1e-10,
                   help="relative gradient tolerance of every exact-LOO refit (default: %(default)s)")
    g.add_argument("--memory-mb", type=_int, default=512,
                   help="memory budget of one exact-LOO chunk, in MiB (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=_run_simulate)


def _run_simulate(args) -> int:
    from sims import simulate

    if args.memory_mb < 1:
        raise InvalidParameterError(f"memory_mb must be >= 1, got {args.memory_mb}.")
    result = simulate(**model_kwargs(args), p=args.p, n_test=args.n_test, reps=args.reps,
                      seed=args.seed, top_m=args.top_m, tol=args.tol, design=args.design,
                      lds_subsets=args.lds_subsets,
                      memory_budget=args.memory_mb * 2**20,
                      progress=not (args.no_progress or args.json))
    print(json.dumps(result, indent=2) if args.json else format_simulation(result))
    return 0


def _fmt_metric(cell: dict) -> str:
    return f"{cell['mean']:8.4f} ± {cell['se']:.4f}"


def format_simulation(result: dict) -> str:
    """Human-readable table of a `simulate` result."""
    c, d = result["config"], result["diagnostics"]
    proj = "P = I" if c["projection"] == "identity" else f"k={c['k']} ({c['projection']}) M={c['n_proj']}"
    head = (f"{c['family']}: p={c['p']} n={c['n']} delta={c['delta']:g} lam={c['lam']:g} "
            f"gamma={c['gamma']:g}" + (f" sigma={c['sigma']:g}" if c["family"] == "gaussian" else "")
            + f" | TRAK: {proj} lam_trak={c['lam_trak']:g}"
            + f" | {c['reps']} rep x {c['n_test']} test points, seed {c['seed']}" + _describe_covariance(c)
            + (f" | {c['design']} features" if c.get("design", "gaussian") != "gaussian" else ""))
    metrics = list(next(iter(result["estimators"].values())).keys())
    lines = [head, "estimator  " + "".join(f"{m:>20s}" for m in metrics)]
    for name, row in result["estimators"].items():
        lines.append(f"{name.upper():<11s}" + "".join(f"{_fmt_metric(row[m]):>20s}" for m in metrics))
    lines.append(f"(mean ± s.e. vs exact LOO; top_overlap uses m={c['top_m']}; exact LOO took "
                 f"{d['loo_chord_steps_mean']:.1f} chord steps on average; {d['wall_time_s']:.1f} s "
                 f"on {d['device']})")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- sweep
def _add_sweep(sub) -> None:
    p = sub.add_parser(
        "sweep", help="run a TOML parameter sweep (cached, resumable) into a tidy CSV table",
        description="Run every (configuration, replicate) of a TOML sweep spec (see figures/specs/ and "
                    "sims/sweep.py). Finished points are cached by a content hash of their "
                    "configuration: an interrupted sweep resumes where it stopped, and the table "
                    "(one row per configuration x replicate x estimator x metric) is rebuilt "
                    "atomically. pandas: pd.read_csv('<out>/table.csv').")
    p.add_argument("spec", help="path of the TOML spec")
    p.add_argument("--preset", default=None, help="apply [presets.NAME] of the spec (e.g. quick, paper)")
    p.add_argument("--out", default=None, help="store directory (default: results/<spec name>)")
    p.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="local: this process (with several JAX devices, one point per device at a time); ray: one Ray task per point, "
                        "local Ray instance or RAY_ADDRESS (extra trak-sim[ray]) (default: %(default)s)")
    p.add_argument("--max-points", type=_int, default=None,
                   help="stop after this many new points (default: run all)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=_run_sweep)


def _run_sweep(args) -> int:
    from sims.runs.sweep import load_spec, run_sweep

    spec = load_spec(args.spec, preset=args.preset)
    if args.max_points is not None and args.max_points < 0:
        raise InvalidParameterError(f"max_points must be >= 0, got {args.max_points}.")
    summary = run_sweep(spec, args.out, progress=not (args.no_progress or args.json),
                        max_units=args.max_points, executor=args.executor)
    if args.json:
        print(json.dumps(summary.asdict(), indent=2))
    else:
        print(f"sweep {summary.name}: {summary.computed} points computed, {summary.cached} cached, "
              f"{summary.total} in all ({summary.wall_time_s:.1f} s); table: {summary.table}")
    return 0


# ------------------------------------------------------------------------------------ compare
def _add_compare(sub) -> None:
    from sims.runs.compare import default_allowance_text

    p = sub.add_parser(
        "compare", help="theory versus simulation for a sweep table; exit 1 if any falls outside tolerance",
        description="Join a sweep table with theory.predict. A comparison passes when |sim - theory| "
                    "<= N_SE * se + ALLOWANCE * sqrt(400/p) (finite-size allowance per metric). "
                    "Exit code 0 when all pass, 1 otherwise: usable as a regression test.")
    p.add_argument("results", help="a sweep store directory or its table.csv")
    p.add_argument("--n-se", type=_float, default=3.0, help="Monte-Carlo standard errors allowed (default: %(default)s)")
    p.add_argument("--allowance", type=_float, default=None,
                   help="finite-size allowance at p = 400 for every metric (for scale, as a fraction of "
                        f"the prediction) (default: {default_allowance_text().replace('%', '%%')})")
    p.add_argument("--estimators", default="if,ns,trak,trak_lev,trak_w,trak_wlev",
                   help="comma-separated; variants are compared where simulated (default: %(default)s)")
    p.add_argument("--metrics", default="pearson,spearman,rel_error,scale", help="comma-separated (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the comparisons as JSON on stdout")
    p.set_defaults(run=_run_compare)


def _run_compare(args) -> int:
    from sims.runs.compare import (ALL_ESTIMATORS, PREDICTED_METRICS, compare, format_comparisons, load_rows,
                              summarize)

    estimators = [e for e in args.estimators.split(",") if e]
    metrics = [m for m in args.metrics.split(",") if m]
    for e in estimators:
        if e not in ALL_ESTIMATORS:
            raise InvalidParameterError(f"estimators must be among {', '.join(ALL_ESTIMATORS)}, got {e!r}.")
    for m in metrics:
        if m not in PREDICTED_METRICS:
            raise InvalidParameterError(f"metrics must be among {', '.join(PREDICTED_METRICS)}, got {m!r}.")
    if args.n_se < 0:
        raise InvalidParameterError(f"n_se must be >= 0, got {args.n_se:g}.")
    allowance = None
    if args.allowance is not None:
        if args.allowance < 0:
            raise InvalidParameterError(f"allowance must be >= 0, got {args.allowance:g}.")
        allowance = {m: args.allowance for m in PREDICTED_METRICS}
    comps = compare(summarize(load_rows(args.results)), n_se=args.n_se, allowance=allowance,
                    estimators=estimators, metrics=metrics)
    if args.json:
        print(json.dumps([c.asdict() for c in comps], indent=2))
    else:
        print(format_comparisons(comps))
    return 0 if all(c.ok for c in comps) else 1


# ------------------------------------------------------------------------------------ figures
def _add_figures(sub) -> None:
    p = sub.add_parser(
        "figures", help="regenerate the figures (theory curves + cached simulation sweeps)",
        description="Draw each figure of the figures package (one module per figure, its spec in "
                    "figures/specs/): its sweep is cached under RESULTS/<preset>/<figure>/ and resumes "
                    "if interrupted; PNG and PDF files (byte-reproducible) are written to --out.")
    p.add_argument("--preset", default="quick", choices=("quick", "paper"),
                   help="quick: small p, minutes on a laptop CPU; paper: large p, for a GPU (default: %(default)s)")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="figure names (default: all)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder of the PNG/PDF files (default: figures/ of a source checkout, else ./figures; "
                        "or $TRAK_SIM_FIGURES_DIR)")
    p.add_argument("--results", default=None, metavar="DIR",
                   help="folder of the cached sweeps (default: results/ of a source checkout, else ./results; "
                        "or $TRAK_SIM_RESULTS_DIR)")
    p.add_argument("--list", action="store_true", help="list the figures and exit")
    p.add_argument("--json", action="store_true",
                   help="print a JSON summary on stdout (figures written, their paths, timings)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(run=_run_figures)


def _run_figures(args) -> int:
    import time

    import figures

    names = figures.names()
    if args.list:
        print(json.dumps(names, indent=2) if args.json else "\n".join(names))
        return 0
    chosen = args.only or names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise InvalidParameterError(f"unknown figure {unknown[0]!r}; available: {', '.join(names)}.")
    done, start = [], time.perf_counter()
    for name in chosen:
        t0 = time.perf_counter()
        paths = figures.make(name, args.preset, out=args.out, results=args.results,
                             progress=not (args.no_progress or args.json))
        done.append({"name": name, "paths": list(paths), "wall_time_s": time.perf_counter() - t0})
        if not args.json:
            print(f"{name}: {', '.join(paths)} ({done[-1]['wall_time_s']:.0f} s)", flush=True)
    if args.json:
        print(json.dumps({"preset": args.preset, "figures": done,
                          "wall_time_s": time.perf_counter() - start}, indent=2))
    return 0


# --------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trak-sim",
        description="High-dimensional theory and simulation of TRAK data attribution for ridge GLMs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


SUBCOMMANDS = [_add_predict, _add_simulate, _add_sweep, _add_compare, _add_figures]


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_INVALID
        enable_compilation_cache()     # $TRAK_SIM_JAX_CACHE moves it, =0 turns it off
        return args.run(args)
    except UsageError as e:
        print(f"{e}", file=sys.stderr)
        return EXIT_INVALID
    except (InvalidParameterError, EstimatorDoesNotExistError) as e:
        print(f"trak-sim: error: {e}", file=sys.stderr)
        return EXIT_INVALID
    except NotConvergedError as e:
        print(f"trak-sim: not converged: {e}", file=sys.stderr)
        return EXIT_NOT_CONVERGED
    except OSError as e:   # files the user named: unreadable, unwritable, full disk
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"trak-sim: error: {e.strerror or e}{where}.", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("trak-sim: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (MemoryError, OverflowError, RuntimeError) as e:   # last resort; other errors are bugs
        sentence = resource_error_sentence(e)
        if sentence is None:
            raise
        print(f"trak-sim: error: {sentence}", file=sys.stderr)
        return EXIT_INVALID


def resource_error_sentence(e: BaseException) -> str | None:
    """One sentence for running out of memory or of the number range, None for anything else."""
    reduce = "reduce --p, --delta, --n-test, --n-proj or --memory-mb (sweeps: the spec's values)"
    if isinstance(e, MemoryError):
        return f"out of memory; {reduce}."
    jax_error = any(c.__name__ in ("XlaRuntimeError", "JaxRuntimeError") for c in type(e).__mro__)
    if jax_error and ("RESOURCE_EXHAUSTED" in str(e) or "out of memory" in str(e).lower()):
        return f"JAX ran out of memory (host or accelerator); {reduce}."
    if isinstance(e, OverflowError):
        first = (str(e).strip().splitlines() or [""])[0].rstrip(".")
        return f"a number is too large ({first or 'overflow'}); reduce the size parameters or their magnitude."
    return None


if __name__ == "__main__":
    sys.exit(main())
