"""Command line: `trak-sim predict|simulate|sweep|compare|figures ...` (see `trak-sim --help`).

Every subcommand uses the persistent JAX compilation cache (`compilecache.jaxcache`): a second call
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
from compilecache.jaxcache import enable_compilation_cache

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


def add_param_arguments(group, params, skip=()) -> None:
    """One option per declared parameter (`theory.params.Param`): --name-with-dashes, its type,
    choices, default and help; booleans are flags."""
    for prm in params:
        if prm.name in skip:
            continue
        help_text = prm.help + ("" if prm.type is bool or "(default" in prm.help else " (default: %(default)s)")
        if prm.type is bool:
            group.add_argument(prm.option, action="store_true", help=help_text)
        else:
            kind = {int: _int, float: _float, str: str}[prm.type]
            group.add_argument(prm.option, type=kind, default=prm.default, choices=prm.choices, help=help_text)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the proportional-regime model (`theory.params.MODEL_PARAMS`) and --variants."""
    from sims.engine.params import SIM_PARAMS
    from theory.params import MODEL_PARAMS

    g = parser.add_argument_group("model (docs/conventions.md)")
    add_param_arguments(g, MODEL_PARAMS)
    add_param_arguments(g, [prm for prm in SIM_PARAMS if prm.name == "variants"])


def model_kwargs(args) -> dict:
    from theory.params import MODEL_KEYS

    return {**{k: getattr(args, k) for k in MODEL_KEYS}, "variants": args.variants}


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
    p.add_argument("--lds-alpha", type=_float, default=None,
                   help="also predict the LDS over random subsets of this fraction, in (0, 1), for every "
                        "estimator and exact LOO (isotropic covariance; docs/theory.md §10)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    p.set_defaults(run=_run_predict)


def _run_predict(args) -> int:
    from theory import predict

    result = predict(**model_kwargs(args), p=args.p, lds_alpha=args.lds_alpha)
    print(json.dumps(result, indent=2) if args.json else format_prediction(result))
    return 0


def _describe_sigma(c: dict) -> str:
    from theory.families import get_family

    return f" sigma={c['sigma']:g}" if get_family(c["family"]).uses_sigma else ""


def _describe_covariance(c: dict) -> str:
    if c.get("covariance", "isotropic") == "isotropic":
        return ""
    return f" | covariance {c['covariance']}({c['cov_param']:g}), alignment {c['alignment']:g}"


def _shown_metrics(result: dict) -> tuple:
    lds = any("lds" in row for row in result["estimators"].values())
    return ("pearson", "spearman", "rel_error", "scale") + (("lds",) if lds else ())


def format_prediction(result: dict) -> str:
    c, k = result["config"], result["constants"]
    proj = "P = I" if c["projection"] == "identity" else f"kappa={c['kappa']:g} ({c['projection']}) M={c['n_proj']}"
    lines = [f"{c['family']}: delta={c['delta']:g} lam={c['lam']:g} gamma={c['gamma']:g}"
             + _describe_sigma(c) + f" | TRAK: {proj} lam_trak={c['lam_trak']:g}" + _describe_covariance(c),
             "estimator  " + "".join(f"{m:>11s}" for m in _shown_metrics(result))]
    for name, row in result["estimators"].items():
        lines.append(f"{name.upper():<11s}" + "".join(f"{row[m]:11.4f}" if m in row else f"{'':11s}"
                                                      for m in _shown_metrics(result)))
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
    from sims.engine.params import SIM_PARAMS

    add_param_arguments(g, SIM_PARAMS, skip=("variants",))
    g.add_argument("--memory-mb", type=_int, default=512,
                   help="memory budget of one exact-LOO chunk, in MiB (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=_run_simulate)


def _run_simulate(args) -> int:
    from sims import simulate

    if args.memory_mb < 1:
        raise InvalidParameterError(f"memory_mb must be >= 1, got {args.memory_mb}.")
    from sims.engine.params import SIM_KEYS

    result = simulate(**model_kwargs(args), **{k: getattr(args, k) for k in SIM_KEYS if k != "variants"},
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
            f"gamma={c['gamma']:g}" + _describe_sigma(c)
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
    from sims.engine.estimators import PREDICTED
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
    p.add_argument("--estimators", default=",".join(PREDICTED),
                   help="comma-separated; variants are compared where simulated (default: %(default)s)")
    p.add_argument("--metrics", default="pearson,spearman,rel_error,scale",
                   help="comma-separated; add lds (and estimator loo) to compare the LDS of tables simulated "
                        "with --lds-subsets (default: %(default)s)")
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


# --------------------------------------------------------------------------------------- plan
def _add_plan(sub) -> None:
    from theory.families import FAMILIES

    p = sub.add_parser(
        "plan", help="projection size k and number of projections M that TRAK needs on your own features",
        description="Fit the ridge GLM on your features (or take --beta) and predict TRAK's Pearson/Spearman "
                    "correlation with exact LOO (or the Newton step) along k for each M: by default from "
                    "the theory conditional on your own rows (test rows held out or given with --test; "
                    "the projection is the only randomness), or with --method gaussian from the "
                    "Gaussian-design theory at the spectrum of X^T X with a plug-in truth. Reports the "
                    "smallest k reaching --target (or the ceiling), the effective dimension and the best "
                    "lam_T per k; --check verifies the recommendation with real sketches. lam and lam_T "
                    "are on the scale of your features (docs/plan.md).")
    g = p.add_argument_group("input (one of --data or --features with --labels)")
    g.add_argument("--data", default=None, metavar="FILE.npz", help="archive with arrays X (n x p) and y (n)")
    g.add_argument("--features", default=None, metavar="X.npy", help="features, memory-mapped")
    g.add_argument("--labels", default=None, metavar="y.npy", help="labels")
    g.add_argument("--beta", default=None, metavar="BETA.npy", help="fitted coefficients (p) instead of fitting")
    p.add_argument("--family", required=True, choices=tuple(FAMILIES), help="GLM family")
    p.add_argument("--lam", type=_float, required=True, help="ridge penalty of the fit on your scale, > 0")
    p.add_argument("--lam-trak", type=_float, default=0.0,
                   help="ridge of TRAK's Gram P^T X^T X P, P ~ N(0, 1/k), on your scale (default: %(default)s)")
    p.add_argument("--target", type=_float, default=0.9, help="target correlation in (0, 1) (default: %(default)s)")
    p.add_argument("--metric", default="spearman", help="spearman or pearson (default: %(default)s)")
    p.add_argument("--n-proj", type=_int, nargs="+", default=[1, 2, 4, 8, 16],
                   help="numbers of projections M (default: 1 2 4 8 16)")
    p.add_argument("--k-grid", type=_int, nargs="+", default=None,
                   help="projection sizes k (default: geometric from 1 to the largest valid k, about 20 points "
                        "with --method conditional, 40 with gaussian)")
    p.add_argument("--spectrum", default="auto", choices=("auto", "exact", "randomized"),
                   help="eigenbasis of X^T X. conditional method: auto = exact when min(n, p) <= 8000, else "
                        "randomized: the top --top eigenpairs and a tail model (accurate for k up to 0.6 top, "
                        "flagged beyond). gaussian method: auto = exact when min(n, p) <= 2000 "
                        "(default: %(default)s)")
    p.add_argument("--top", type=_int, default=None,
                   help="eigenpairs of the randomized spectrum of the conditional method (default: 500)")
    p.add_argument("--seed", type=_int, default=0, help="seed of the randomized spectrum (default: %(default)s)")
    p.add_argument("--method", default="conditional", choices=("conditional", "gaussian", "both"),
                   help="conditional: the theory on your own rows, the projection the only randomness; "
                        "gaussian: the Gaussian-design theory at your spectrum and a plug-in truth; both: "
                        "side by side (default: %(default)s)")
    p.add_argument("--test", default=None, metavar="FILE",
                   help="test rows (.npy, or .npz with array X): then every row of --data fits; default: a "
                        "seeded hold-out of min(200, n/10) rows (conditional method)")
    p.add_argument("--holdout", type=_int, default=None,
                   help="rows held out as test rows when --test is not given (2 .. n/2)")
    p.add_argument("--truth", default="auto", choices=("auto", "loo", "ns"),
                   help="what TRAK is scored against: exact LOO, the Newton step, or auto: exact LOO when "
                        "its estimated time is <= 30 s (default: %(default)s)")
    p.add_argument("--variants", action="store_true",
                   help="predict the corrected variants even when min(n, p) > 2000 (a second eigendecomposition)")
    p.add_argument("--check", action="store_true",
                   help="after recommending, run TRAK with real sketches at the recommended k for each M "
                        "on your rows and print achieved +- s.e. beside predicted")
    p.add_argument("--check-draws", type=_int, default=8, help="draws of M sketches per check (default: %(default)s)")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="write a PNG of the curves")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    p.set_defaults(run=_run_plan)


def _run_plan(args) -> int:
    import numpy as np

    from sims.runs.features import load_array, load_features, load_test_rows
    from sims.runs.plan import format_plan, plan, plot_plan

    X, y = load_features(args.data, features=args.features, labels=args.labels)
    beta = None
    if args.beta is not None:
        beta = load_array(args.beta, "beta file")
        if not isinstance(beta, np.ndarray) or beta.dtype.kind not in "biuf":
            raise InvalidParameterError(f"--beta must be a .npy file of numbers, got {args.beta!r}.")
    X_test = load_test_rows(args.test) if args.test is not None else None
    result = plan(X, y, family=args.family, lam=args.lam, lam_trak=args.lam_trak, target=args.target,
                  metric=args.metric, n_proj=args.n_proj, k_grid=args.k_grid, beta=beta,
                  spectrum=args.spectrum, seed=args.seed, method=args.method, X_test=X_test,
                  holdout=args.holdout, truth=args.truth, variants=True if args.variants else "auto",
                  check=args.check, check_draws=args.check_draws, progress=not args.json, top=args.top)
    if args.plot:
        plot_plan(result, args.plot)
    print(json.dumps(result, indent=2) if args.json else format_plan(result))
    return 0


# ------------------------------------------------------------------------------------ network
def _add_network(sub) -> None:
    p = sub.add_parser(
        "network", help="TRAK on a trained network: estimators against exact network LOO and linearized LOO",
        description="Train a one-hidden-layer tanh perceptron on scikit-learn's digits (digit >= 5, "
                    "logistic loss + (lam/2)||theta||^2, trust-region Newton to a tight optimum), compute "
                    "the exact leave-one-out of every training point warm-started at theta_hat and the "
                    "exact LOO of the linearized model, and score IF/NS (exact and Gauss-Newton "
                    "Hessians), the Newton step and TRAK (and variants) on the after-kernel features "
                    "against both, with the GLM theory at the after-kernel spectrum (docs/network.md). "
                    "The defaults (H = 4, p = 253, n = 100, 5 test points, k/p = 0.1 and 0.5, M = 1, "
                    "lam_trak = 1, one draw) are a laptop-sized smoke run: 27 s on an idle 2-core "
                    "machine, 41 s under shared load, most of it compilation; the runs of "
                    "docs/network.md take minutes. "
                    "Needs scikit-learn (trak-sim[data]).")
    p.add_argument("--dataset", default="digits", help="dataset (default: %(default)s)")
    p.add_argument("--hidden", type=_int, default=4, help="hidden units H; p = H (d + 2) + 1 (default: %(default)s)")
    p.add_argument("--n-train", type=_int, default=100, help="training images (default: %(default)s)")
    p.add_argument("--n-test", type=_int, default=5, help="test images (default: %(default)s)")
    p.add_argument("--kappa", type=_float, nargs="+", default=[0.1, 0.5], help="k/p values (default: %(default)s)")
    p.add_argument("--n-proj", type=_int, nargs="+", default=[1], help="M values (default: %(default)s)")
    p.add_argument("--lam", type=_float, default=4.0, help="weight decay, > 0 (default: %(default)s)")
    p.add_argument("--lam-trak", type=_float, nargs="+", default=[1.0],
                   help="ridge(s) of TRAK's Gram matrix, >= 0 (default: %(default)s)")
    p.add_argument("--draws", type=_int, default=1, help="independent projection draws (default: %(default)s)")
    p.add_argument("--seed", type=_int, default=0, help="integer seed of all randomness (default: %(default)s)")
    p.add_argument("--tol", type=_float, default=1e-10, help="relative gradient tolerance (default: %(default)s)")
    p.add_argument("--max-iter", type=_int, default=200,
                   help="Newton steps allowed to the training and each LOO fallback (default: %(default)s)")
    p.add_argument("--lbfgs-iters", type=_int, default=2000,
                   help="L-BFGS warm-up iterations before Newton, >= 0 (default: %(default)s)")
    p.add_argument("--check-points", type=_int, default=0,
                   help="retrain this many high-residual points from scratch and from theta_hat (default: %(default)s)")
    p.add_argument("--no-theory", action="store_true", help="skip the theory at the after-kernel spectrum")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    p.set_defaults(run=_run_network)


def _run_network(args) -> int:
    if args.lbfgs_iters < 0:
        raise InvalidParameterError(f"lbfgs_iters must be >= 0, got {args.lbfgs_iters}.")
    from sims.network import run_network

    result = run_network(args.dataset, hidden=args.hidden, n_train=args.n_train, n_test=args.n_test,
                         kappas=args.kappa, n_projs=args.n_proj, lam=args.lam, lam_trak=args.lam_trak,
                         draws=args.draws, seed=args.seed, tol=args.tol, max_iter=args.max_iter,
                         lbfgs_iters=args.lbfgs_iters, check_points=args.check_points, theory=not args.no_theory)
    print(json.dumps(result, indent=2) if args.json else format_network(result))
    return 0


def format_network(result: dict) -> str:
    """Human-readable Pearson / Spearman table of a `network` result."""
    c, t = result["config"], result["training"]
    lines = [f"digits MLP: H={c['hidden']} p={c['p']} n={c['n_train']} lam={c['lam']:g} | train acc "
             f"{t['train_accuracy']:.3f}, test acc {t['test_accuracy']:.3f}, distinct units "
             f"{t['units']['distinct']}/{c['hidden']}, Hessian min eig {t['hessian_min_eig']:.3g}",
             f"not-PD LOO Hessians: {len(result['loo']['not_pd_points'])}, fallback points: "
             f"{len(result['loo']['fallback_points'])}; linearization gap (linearized vs network LOO): "
             f"pearson {result['linearization_gap']['pearson']['mean']:.3f}",
             f"{'estimator':<24s}{'pearson(net)':>13s}{'spearman(net)':>14s}{'pearson(lin)':>13s}{'spearman(lin)':>14s}"]

    def row(name, sc):
        cells = [sc[t_][m]["mean"] for t_ in ("network_loo", "linearized_loo") for m in ("pearson", "spearman")]
        return f"{name:<24s}" + "".join(f"{'n/a' if v is None else f'{v:.3f}':>{w}s}"
                                         for v, w in zip(cells, (13, 14, 13, 14)))

    for name, sc in result["estimators"].items():
        lines.append(row(name, sc))
    for g in result["trak"]:
        lines.append(row(f"trak k/p={g['kappa']:g} M={g['n_proj']} lT={g['lam_trak']:g}", g["estimators"]["trak"]))
        cond = g.get("conditional")
        if cond and all("error" not in cond[t_] for t_ in ("network_loo", "linearized_loo")):
            lines.append(row("  conditional theory", {t_: {m: {"mean": cond[t_]["trak"].get(m)}
                                                           for m in ("pearson", "spearman")} for t_ in cond}))
        th = g.get("theory")
        if th and "trak" in th:
            cells = [th["trak"].get(m) for m in ("pearson", "spearman")]
            lines.append(f"{'  gaussian theory':<24s}{'':>27s}" + "".join(
                f"{'n/a' if v is None else f'{v:.3f}':>{w}s}" for v, w in zip(cells, (13, 14))))
    lines.append("decomposition: network LOO -> linearized LOO (the kernel-machine step; the gap line) -> TRAK at "
                 "k, M (the projection; measured, and predicted by the conditional theory against both truths)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trak-sim",
        description="High-dimensional theory and simulation of TRAK data attribution for ridge GLMs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in SUBCOMMANDS + plugin_subcommands():
        add(sub)
    return parser


SUBCOMMANDS = [_add_predict, _add_simulate, _add_sweep, _add_compare, _add_plan, _add_network]
PLUGIN_GROUP = "trak_sim.commands"     # subcommands of packages above sims (the figures), by entry point


def plugin_subcommands() -> list:
    """The `add(sub)` functions registered under the entry-point group PLUGIN_GROUP (pyproject.toml):
    the figures package adds `trak-sim figures` that way, so that sims imports nothing from it."""
    from importlib.metadata import entry_points

    return [ep.load() for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name)]


def main(argv=None) -> int:
    from theory.numerics import enable_float64

    enable_float64()
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
