"""The figures of trak-sim: one module `figures.fig_<name>` per figure, each with a spec in
figures/specs/ and a function `make(preset, progress) -> [paths]`.

    figures.names()                        the registered figures
    figures.make(name, preset, out=DIR)    draw one (its sweep cached under results/)

Theory is drawn as lines, simulation as points with ± 2 s.e. error bars (`figures._common`).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

PRESETS = ("quick", "paper")


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
    from theory.jaxcache import enable_compilation_cache
    from theory.numerics import enable_float64

    from . import _common

    enable_float64()
    enable_compilation_cache()
    previous = dict(_common.OUTPUT)
    _common.OUTPUT.update(figures=out, results=results)
    try:
        return list(load(name).make(preset, progress=progress))
    finally:
        _common.OUTPUT.update(previous)
