"""The figures of trak-sim: one module `figures.fig_<name>` per figure, each with a spec in
figures/specs/ and a function `make(preset, progress) -> [paths]`.

    figures.names()                        the registered figures
    figures.make(name, preset, out=DIR)    draw one (its sweep cached under results/)
    figures.make_many(names, preset, jobs=N)  draw several, in N worker processes when N > 1

Theory is drawn as lines, simulation as points with ± 2 s.e. error bars (`figures._common`).
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from pathlib import Path

PRESETS = ("quick", "paper")
DEFAULT_COST = 10.0    # seconds; a figure module's COST (its quick preset from scratch) when it sets none


def names() -> list[str]:
    """Names of the figure modules (fig_*), sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("fig_"))


def load(name: str):
    """The module of figure `name`."""
    return importlib.import_module(f"{__name__}.{name}")


def make(name: str, preset: str = "quick", *, out: str | Path | None = None,
         results: str | Path | None = None, progress: bool = True) -> list[str]:
    """Draw figure `name` into `out` (default `_common.default_out()`), its simulations cached
    under `results` (default `_common.default_results()`); return the written paths."""
    import jax

    from compilecache.jaxcache import enable_compilation_cache
    from theory.numerics import enable_float64

    from . import _common

    enable_float64()
    enable_compilation_cache()
    previous = dict(_common.OUTPUT)
    _common.OUTPUT.update(figures=out, results=results)
    try:
        try:
            return list(load(name).make(preset, progress=progress))
        except jax.errors.JaxRuntimeError as err:
            if not _missing_kernel(err):
                raise
            _caches_off()                        # the figure once more, compiling everything afresh
            return list(load(name).make(preset, progress=progress))
    finally:
        _common.OUTPUT.update(previous)


def _missing_kernel(err) -> bool:
    """XLA:CPU's error for an executable loaded from a cache without one of its generated kernels
    ("Function wrapped_broadcast not found"), seen once when several workers filled one cache."""
    return "Function" in str(err) and "not found" in str(err)


def _caches_off() -> None:
    """Stop loading executables from the persistent compilation cache and `compilecache.aot`, and drop
    the ones this process holds (the figure's finished sweep points stay in its results)."""
    import warnings

    import jax

    from compilecache import aot

    warnings.warn("an executable loaded from the compilation cache lacks a kernel (an XLA:CPU "
                  "cache problem); drawing the figure again with the caches off.", RuntimeWarning)
    jax.config.update("jax_enable_compilation_cache", False)
    aot.set_folder(None)
    jax.clear_caches()


def costliest_first(names) -> list[str]:
    """`names` ordered by the modules' COST, largest first (ties keep their order)."""
    return sorted(names, key=lambda n: -float(getattr(load(n), "COST", DEFAULT_COST)))


def _timed_make(name, preset, out, results, progress):
    t0 = time.perf_counter()
    paths = make(name, preset, out=out, results=results, progress=progress)
    return list(paths), time.perf_counter() - t0


def make_many(names, preset: str = "quick", *, out=None, results=None, jobs: int = 1, progress: bool = True):
    """Draw the figures `names`, yielding (name, paths, seconds) as each is done.

    With jobs > 1 they are drawn by that many worker processes, the costliest first (a module's
    COST, default DEFAULT_COST), so that the longest figure does not start last. From scratch most
    of a figure's time is XLA compiling its programs, one core per program, so two workers on two
    cores take about half the time. The figures are independent (each has its own results
    folder); the persistent compilation cache is shared safely. Progress bars are shown only with
    jobs = 1; a failing figure stops the rest and re-raises its error."""
    names = list(names)
    if jobs <= 1 or len(names) <= 1:
        for name in names:
            yield (name, *_timed_make(name, preset, out, results, progress))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=min(jobs, len(names)), mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(_timed_make, n, preset, out, results, False): n for n in costliest_first(names)}
        for done in as_completed(futures):
            yield (futures[done], *done.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
