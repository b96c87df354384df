"""Declarative parameter sweeps: a TOML spec -> cached, resumable simulation points -> tidy table.

Spec format (every key is a `sims.simulate` parameter; see figures/specs/*.toml):

    name = "corr_vs_delta"            # optional, default: the file name
    description = "..."               # optional
    [defaults]                        # shared values
    family = "logistic"
    p = 200
    reps = 4
    [grid]                            # cartesian product of lists
    delta = [0.5, 1.0, 2.0, 4.0]
    kappa = [0.1, 0.5]
    [[points]]                        # optional explicit settings, crossed with the grid
    lam = 0.1
    [presets.quick]                   # optional named overrides of [defaults] (e.g. p, reps),
    p = 100                           #   chosen with load_spec(path, preset="quick"); a preset
                                      #   may also replace `grid` or `points`
    [theory]                          # optional, read by figure scripts only (dense theory curves)

A spec must say what to simulate: at least one non-empty [defaults], [grid] or [[points]] in
the file itself (presets only override them). A spec without any, such as figures/specs/fig_real.toml
(whose [figure] section is read by its own figure script), is refused rather than silently run
as the single default configuration. A spec with [defaults] only is one configuration.

Each (configuration, replicate) is one unit of work, cached under a content hash of its
configuration (`store.config_hash`), so a restarted sweep recomputes nothing that finished and
adding replicates or grid values reuses the old points. Units of equal hash (e.g. replicate 0 of
configurations that differ only in `reps`) are run once. The table of a run holds exactly the
spec's units; other point files in the same folder stay there as cache. Compiled kernels are
reused across points of equal shapes (n, p, k, n_test), so only new shapes compile.

With several JAX devices the local executor runs units side by side, one per device (a thread
per device, each unit pinned with `jax.default_device`, so its numbers are those of a
one-device run); a lone unit (or `trak-sim simulate`) instead shards its exact-LOO lanes over
all devices (`sims.engine.loo`). Only the main thread writes to the store.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from theory.errors import InvalidParameterError
from compilecache.jaxcache import enable_compilation_cache
from theory.numerics import enable_float64

from ..engine.params import SWEEP_KEYS
from ..engine.simulate import SimParams, run_replicate, validate_sim
from .store import Store, config_hash

SPEC_SECTIONS = ("name", "description", "defaults", "grid", "points", "presets", "theory", "figure")


@dataclass(frozen=True)
class Spec:
    name: str
    description: str
    configs: tuple           # validated SimParams, one per configuration
    raw: dict                # the parsed TOML (theory / figure sections are read by figures)


def load_spec(path, preset: str | None = None) -> Spec:
    """Parse and validate a sweep spec; raise InvalidParameterError with one sentence on error."""
    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(f"sweep spec {str(path)!r} does not exist or is not a file.")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InvalidParameterError(f"cannot parse sweep spec {str(path)!r}: {e}.") from None
    return parse_spec(raw, default_name=path.stem, preset=preset)


def parse_spec(raw: dict, default_name: str = "sweep", preset: str | None = None) -> Spec:
    """Validate a parsed spec and expand it into configurations (applying `preset` if given)."""
    unknown = sorted(set(raw) - set(SPEC_SECTIONS))
    if unknown:
        raise InvalidParameterError(
            f"unknown top-level key {unknown[0]!r} in sweep spec; allowed: {', '.join(SPEC_SECTIONS)}.")
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not name or any(ch in name for ch in "/\\ "):
        raise InvalidParameterError(f"sweep name must be a non-empty word without spaces or slashes, got {name!r}.")
    defaults = dict(_table(raw, "defaults"))
    presets = _table(raw, "presets")
    grid = _table(raw, "grid")
    points = raw.get("points", [{}])
    if not (defaults or grid or raw.get("points")):
        hint = (f" (its [figure] section is read by its own figure script: trak-sim figures --only {name})"
                if "figure" in raw else "")
        raise InvalidParameterError(
            f"sweep spec {name!r} defines nothing to simulate: it has no [defaults], [grid] or "
            f"[[points]]{hint}.")
    if preset is not None:
        if preset not in presets:
            raise InvalidParameterError(
                f"preset {preset!r} is not defined in the spec; defined: {', '.join(presets) or 'none'}.")
        if not isinstance(presets[preset], dict):
            raise InvalidParameterError(
                f"preset {preset!r} must be a table ([presets.{preset}]), got {type(presets[preset]).__name__}.")
        chosen = dict(presets[preset])
        grid = chosen.pop("grid", grid)       # a preset may replace the grid or the points
        points = chosen.pop("points", points)
        if not isinstance(grid, dict):
            raise InvalidParameterError(f"grid of preset {preset!r} must be a table.")
        defaults.update(chosen)
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points) or not points:
        raise InvalidParameterError("'points' must be a non-empty array of tables ([[points]]).")
    sections = [("defaults", defaults), ("grid", grid)] + [("points", p) for p in points]
    for section, table in sections:
        bad = sorted(set(table) - set(SWEEP_KEYS))
        if bad:
            raise InvalidParameterError(
                f"unknown parameter {bad[0]!r} in [{section}]; allowed: {', '.join(SWEEP_KEYS)}.")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise InvalidParameterError(f"grid entry {key!r} must be a non-empty list, got {values!r}.")
    keys = list(grid)
    configs = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        for pt in points:
            settings = {**defaults, **dict(zip(keys, combo)), **pt}
            try:
                configs.append(validate_sim(**settings))
            except InvalidParameterError as e:
                raise InvalidParameterError(f"invalid sweep point {_describe(settings)}: {e}") from None
    unique = tuple(dict.fromkeys(configs))
    return Spec(name, str(raw.get("description", "")), unique, raw)


def _table(raw, key):
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise InvalidParameterError(f"[{key}] must be a table, got {type(value).__name__}.")
    return value


def _describe(settings: dict) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in settings.items()) + "}"


def units(spec: Spec) -> list:
    """(SimParams, replicate, hash) for every unit of work of the spec, one per distinct hash."""
    out = {}
    for sp in spec.configs:
        cfg = sp.asdict()
        for rep in range(sp.reps):
            out.setdefault(config_hash(cfg, rep), (sp, rep))
    return [(sp, rep, h) for h, (sp, rep) in out.items()]


def code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("trak-sim")
    except PackageNotFoundError:   # pragma: no cover
        v = "unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{v}+{commit}" if commit else v


def point_record(spec_name: str, sp: SimParams, rep: int, h: str, result, wall: float, version: str) -> dict:
    import jax
    import numpy as np

    device = _device()
    metrics = {est: {m: {"mean": float(np.mean(v)), "se": float(np.std(v, ddof=1) / np.sqrt(v.size))
                         if v.size > 1 else 0.0, "n": int(v.size)} for m, v in row.items()}
               for est, row in result.metrics.items()}
    return {"hash": h, "spec": spec_name, "config": sp.asdict(), "rep": rep, "metrics": metrics,
            "diagnostics": result.diagnostics,
            "meta": {"wall_time_s": wall, "code_version": version, "jax_version": jax.__version__,
                     "device": device.platform, "device_id": device.id,
                     "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}}


def _device():
    """The device this unit runs on: the pinned one (`jax.default_device`), else the first."""
    import jax

    pinned = jax.config.jax_default_device
    return pinned if isinstance(pinned, jax.Device) else jax.devices()[0]


def compute_unit(spec_name: str, sp: SimParams, rep: int, h: str, version: str) -> dict:
    """Run one replicate and return its point record (no file I/O but the compilation cache)."""
    enable_compilation_cache()      # also in Ray workers, which do not run run_sweep
    t0 = time.perf_counter()
    result = run_replicate(sp, rep)
    return point_record(spec_name, sp, rep, h, result, time.perf_counter() - t0, version)


@dataclass
class SweepSummary:
    name: str
    out_dir: str
    table: str
    total: int
    cached: int
    computed: int
    wall_time_s: float

    def asdict(self) -> dict:
        return dict(self.__dict__)


EXECUTORS = ("local", "ray")


def run_sweep(spec: Spec | str | Path, out_dir=None, *, progress: bool = True,
              max_units: int | None = None, executor: str = "local") -> SweepSummary:
    """Run every unfinished unit of `spec` and rebuild the table (see module docstring).

    `out_dir` defaults to results/<spec name>. `max_units` stops after that many new units
    (used by tests of resumption). Ctrl-C keeps every finished point and the table consistent.
    executor "local" runs the units in this process (with several JAX devices, one unit per
    device at a time); "ray" submits each unit as a Ray task (extra `trak-sim[ray]`; connects to
    RAY_ADDRESS if set, else starts a local Ray instance) while this process, the only writer,
    stores the finished points as they arrive, in the same store and cache.
    """
    enable_float64()
    if executor not in EXECUTORS:
        raise InvalidParameterError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}.")
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    store = Store(Path(out_dir) if out_dir is not None else Path("results") / spec.name)
    try:
        store.points.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidParameterError(
            f"cannot create the output directory {str(store.root)!r}: {e.strerror}.") from None
    store.remove_stale_temporaries()
    todo = units(spec)
    missing = [u for u in todo if not store.has(u[2])]
    pending = missing if max_units is None else missing[:max_units]
    version = code_version()
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pending), desc=f"sweep {spec.name}", unit="pt")
    try:
        results = (_ray_results if executor == "ray" else _local_results)(spec.name, pending, version)
        for h, record in results:
            store.put(h, record)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        table = store.write_table(spec.name, hashes=[h for _, _, h in todo])
    return SweepSummary(spec.name, str(store.root), str(table), len(todo), len(todo) - len(missing),
                        len(pending), time.perf_counter() - t0)


def _local_results(spec_name, pending, version):
    import jax

    devices = jax.devices()
    if len(devices) > 1 and len(pending) > 1:
        yield from _per_device_results(spec_name, pending, version, devices)
        return
    for sp, rep, h in pending:
        yield h, compute_unit(spec_name, sp, rep, h, version)


def _per_device_results(spec_name, pending, version, devices):
    """Yield (hash, record) as units finish, one worker thread per device taking units from a
    shared queue (jit releases the GIL while a device computes). On an error or Ctrl-C in the
    caller the workers take no new unit, and the caller waits for the running ones (at most one
    unit per device; their records are dropped): a process that exits while XLA still runs on
    another thread aborts."""
    import queue
    import threading

    import jax

    todo, done, stop = queue.Queue(), queue.Queue(), threading.Event()
    for unit in pending:
        todo.put(unit)

    def worker(device):
        with jax.default_device(device):
            while not stop.is_set():
                try:
                    sp, rep, h = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    done.put((h, compute_unit(spec_name, sp, rep, h, version), None))
                except BaseException as e:     # handed to the caller, which raises it
                    done.put((h, None, e))
                    return

    threads = [threading.Thread(target=worker, args=(device,), name=f"sweep-{device}")
               for device in devices[:len(pending)]]
    for thread in threads:
        thread.start()
    try:
        for _ in range(len(pending)):
            while True:
                try:
                    h, record, error = done.get(timeout=0.1)     # short waits: Ctrl-C stays prompt
                    break
                except queue.Empty:
                    continue
            if error is not None:
                raise error
            yield h, record
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def _ray_results(spec_name, pending, version):
    """Yield (hash, record) as Ray tasks finish (in completion order)."""
    try:
        import ray
    except ImportError:
        raise InvalidParameterError("executor 'ray' needs Ray: pip install 'trak-sim[ray]'.") from None
    if not pending:
        return
    if not ray.is_initialized():
        import os
        ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=False,
                 include_dashboard=False)
    remote = ray.remote(compute_unit)
    futures = {remote.remote(spec_name, sp, rep, h, version): h for sp, rep, h in pending}
    try:
        while futures:
            done, _ = ray.wait(list(futures), num_returns=1)
            h = futures.pop(done[0])
            yield h, ray.get(done[0])
    finally:
        for ref in futures:           # interrupted: do not leave work running
            ray.cancel(ref, force=True)


def summary_json(summary: SweepSummary) -> str:
    return json.dumps(summary.asdict(), indent=2)
