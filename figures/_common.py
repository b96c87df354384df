"""Shared plumbing of the figure scripts: run a figure's sweep, theory curves, one visual style.

Every figure module `figures/fig_<name>.py` has a spec `figures/specs/fig_<name>.toml` ([defaults],
[grid], [presets.quick], [presets.paper], [theory]) and a function `make(preset) -> [paths]`.
Simulations come from the cached sweep store <results>/<preset>/<name>/ (resumable); theory is
`theory.predict` on a dense grid. Theory is drawn as lines, simulation as points with error bars
(± 2 standard errors).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sims.engine.estimators import REGISTRY, estimator_group  # noqa: E402
from theory.params import MODEL_KEYS  # noqa: E402

PACKAGE = Path(__file__).resolve().parent
SPECS = PACKAGE / "specs"
_CHECKOUT = (PACKAGE.parent / "pyproject.toml").is_file()   # a source checkout, not an install


def default_out() -> Path:
    """Where figures go: $TRAK_SIM_FIGURES_DIR, else figures/ of a checkout, else ./figures."""
    return Path(os.environ.get("TRAK_SIM_FIGURES_DIR", PACKAGE if _CHECKOUT else Path.cwd() / "figures"))


def default_results() -> Path:
    """Where sweep caches go: $TRAK_SIM_RESULTS_DIR, else results/ of a checkout, else ./results."""
    return Path(os.environ.get("TRAK_SIM_RESULTS_DIR",
                               PACKAGE.parent / "results" if _CHECKOUT else Path.cwd() / "results"))


# Set by `figures.make` for the duration of one figure (the figure scripts read them at call time).
OUTPUT = {"figures": None, "results": None}


def out_dir() -> Path:
    return Path(OUTPUT["figures"] or default_out())


def results_dir() -> Path:
    return Path(OUTPUT["results"] or default_results())

COLORS = {name: e.color for name, e in REGISTRY.items()}
LABELS = {name: e.label for name, e in REGISTRY.items()}
METRIC_LABELS = {"pearson": "Pearson corr. with LOO", "spearman": "Spearman corr. with LOO",
                 "rel_error": "relative error ‖est − LOO‖/‖LOO‖", "scale": "best-fit scale (LOO on est.)",
                 "top_overlap": "top-5% overlap with LOO",
                 "lds": "LDS (half-subsets)"}
PARAM_LABELS = {"delta": "n/p (δ)", "kappa": "k/p (κ)", "lam": "λ", "n_proj": "projections M",
                "p": "p", "lam_trak": "λ_T", "gamma": "γ"}

plt.rcParams.update({
    "figure.dpi": 110, "savefig.dpi": 150, "font.size": 10, "axes.titlesize": 10,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "legend.frameon": False, "lines.linewidth": 1.8, "errorbar.capsize": 2.5,
})


def run_figure_sweep(name: str, preset: str, progress: bool = True):
    """Run (or resume) the sweep of figures/specs/<name>.toml; return (spec, summaries)."""
    from sims.runs.compare import load_rows, summarize
    from sims.runs.sweep import load_spec, run_sweep

    spec = load_spec(SPECS / f"{name}.toml", preset=preset)
    store = results_dir() / preset / name
    run_sweep(spec, store, progress=progress)
    return spec, summarize(load_rows(store))


def theory_grid(spec, key: str | None = None):
    """Values of the varied parameter for the dense theory curves: the [theory] section of a spec
    (or its sub-table `key`): explicit `values`, or start/stop/num with scale linear or log."""
    th = spec.raw.get("theory", {})
    th = th[key] if key is not None else th
    if "values" in th:
        return np.asarray(th["values"], dtype=float)
    lo, hi, num = th["start"], th["stop"], th.get("num", 60)
    return np.geomspace(lo, hi, num) if th.get("scale", "linear") == "log" else np.linspace(lo, hi, num)


def predict_curve(vary: str, values, variants: bool = False, **fixed) -> dict:
    """theory.predict_curve along `values` of parameter `vary`: {estimator: {metric: array}}."""
    values = [int(v) for v in values] if vary == "n_proj" else [float(v) for v in values]
    return theory("predict_curve", vary, values, variants=variants, **fixed)["estimators"]


def cached_json(store: Path, prefix: str, compute, *, key_extra=None, **kwargs):
    """compute(**kwargs), cached as JSON under store/<prefix>_<hash>.json, the hash covering every
    argument, the results schema and `key_extra` (a changed value or schema recomputes instead of
    reusing; an unreadable entry is recomputed and overwritten; writes are atomic)."""
    import hashlib
    import json

    from sims.runs.store import RESULTS_SCHEMA, atomic_write_text

    key = json.dumps({**kwargs, "schema": RESULTS_SCHEMA, **(key_extra or {})}, sort_keys=True)
    path = store / f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    if path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            pass
    out = compute(**kwargs)
    store.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(out))
    return out


# ----------------------------------------------------------------------------- theory cache
def theory(function: str, *args, **kwargs):
    """theory.<function>(*args, **kwargs) (predict, predict_curve, predict_spectrum), memoized on
    disk under <results>/theory/: a rerun of `make figures` recomputes no prediction. The key
    covers the arguments (arrays by content), the source of the theory package and the JAX
    version, so a changed formula or JAX misses the cache; entries are JSON (floats round-trip
    exactly), written atomically; an unreadable entry is recomputed."""
    import hashlib
    import json

    import theory as th

    key = json.dumps({"function": function, "args": _encode(args, digest=True),
                      "kwargs": _encode(kwargs, digest=True), "source": _theory_digest()}, sort_keys=True)
    path = results_dir() / "theory" / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"
    try:
        return _decode(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    result = getattr(th, function)(*args, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_encode(result)))
    os.replace(tmp, path)
    return result


def _theory_digest() -> str:
    import hashlib

    import jax

    import theory as th

    h = hashlib.sha256(jax.__version__.encode())
    root = Path(th.__file__).parent
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + f.read_bytes())
    return h.hexdigest()


def _encode(obj, digest: bool = False):
    """JSON-able form; arrays as {"__array__": values, "dtype"} (or their SHA-256 for cache keys)."""
    import hashlib

    if isinstance(obj, dict):
        return {str(k): _encode(v, digest) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v, digest) for v in obj]
    if isinstance(obj, np.ndarray) or hasattr(obj, "__array__") and not np.isscalar(obj):
        a = np.asarray(obj)
        if digest:
            return {"__sha256__": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest(),
                    "shape": list(a.shape), "dtype": str(a.dtype)}
        return {"__array__": a.tolist(), "dtype": str(a.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _decode(obj):
    if isinstance(obj, dict):
        if "__array__" in obj:
            return np.asarray(obj["__array__"], dtype=obj["dtype"])
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def log_ticks(ax, ticks, axis="x"):
    """Log-scaled axis with plain labels at `ticks` and no minor labels."""
    from matplotlib.ticker import NullFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks, labels=[f"{t:g}" for t in ticks])
    target.set_minor_formatter(NullFormatter())


VARIANTS = estimator_group("variant")


def model_of(config: dict) -> dict:
    return {k: config[k] for k in MODEL_KEYS}


def select(summaries, **where):
    """Summaries whose config matches every key=value of `where` (floats compared to 1e-12)."""
    def match(cfg):
        return all(abs(cfg[k] - v) < 1e-12 if isinstance(v, float) else cfg[k] == v for k, v in where.items())
    return [s for s in summaries if match(s["config"])]


def sim_series(summaries, x_key: str, estimator: str, metric: str):
    """(x, mean, se) arrays of the simulations, sorted by x."""
    pts = sorted((s["config"][x_key], s["estimators"][estimator][metric]["mean"],
                  s["estimators"][estimator][metric]["se"]) for s in summaries)
    if not pts:
        return np.array([]), np.array([]), np.array([])
    x, m, se = map(np.asarray, zip(*pts))
    return x, m, se


def plot_theory(ax, x, y, estimator, **kw):
    kw = {"color": COLORS[estimator], "label": f"{LABELS[estimator]} (theory)", **kw}
    ax.plot(x, y, **kw)


def plot_sim(ax, x, mean, se, estimator, **kw):
    kw = {"color": COLORS[estimator], "fmt": "o", "ms": 4, "label": f"{LABELS[estimator]} (simulation)", **kw}
    ax.errorbar(x, mean, yerr=2 * se, **kw)


def caption(spec, preset: str) -> str:
    d = spec.configs[0]
    return (f"{spec.description}  Simulation: p = {d.p}, {d.reps} replicates × {d.n_test} test points "
            f"(preset '{preset}'); error bars ± 2 s.e.")


def add_caption(fig, text: str) -> None:
    """Write `text` under everything already drawn (tick and axis labels included), wrapped to
    the width of the figure."""
    import textwrap

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    to_fig = fig.transFigure.inverted()
    bottom = min(ax.get_tightbbox(renderer).transformed(to_fig).y0 for ax in fig.axes)
    width = int(fig.get_figwidth() * 15)       # characters of 8-pt text per line
    fig.text(0.01, bottom - 0.02, textwrap.fill(text, width), fontsize=8, va="top", ha="left")


_METADATA = {"png": {"Software": "trak-sim"},
             "pdf": {"Creator": "trak-sim", "Producer": "trak-sim", "CreationDate": None}}


def save(fig, name: str) -> list[str]:
    """Write `name`.png and `name`.pdf, byte for byte reproducible (no creation date, fixed
    software tag), and close the figure."""
    out = out_dir()
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        path = out / f"{name}.{ext}"
        fig.savefig(path, bbox_inches="tight", metadata=_METADATA[ext])
        paths.append(str(path))
    plt.close(fig)
    return paths
