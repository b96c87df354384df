"""Persistent JAX compilation cache shared by every trak-sim process of a user.

A fresh process spends most of its start-up compiling the same XLA programs as the last one
(the fixed-point solver, the assembly of a prediction, the fit and exact-LOO kernels). With the
cache on, a compiled program is written to disk once and loaded by every later process whose
program, JAX/jaxlib version, backend and compile flags are the same (JAX's cache key covers
them all); a different program simply misses, so results never depend on the cache.

    where      $TRAK_SIM_JAX_CACHE/jax-<jax>-<jaxlib>, by default
               ${XDG_CACHE_HOME:-~/.cache}/trak-sim/jax-<jax>-<jaxlib>: a new JAX version gets a
               new folder (the old one can be deleted), so no entry outlives its JAX
    off        TRAK_SIM_JAX_CACHE=0 (or off, false, no, none)
    JAX's own  JAX_COMPILATION_CACHE_DIR (or jax.config's jax_compilation_cache_dir), when set,
               wins: the cache is left as configured
    size       at most MAX_SIZE bytes; least recently used entries are evicted beyond that

Concurrent processes (sweeps, `make -j`, pytest-xdist) are safe: JAX writes an entry with a
plain `write_bytes`, which another process could read half-written, but with a size limit set
JAX holds a file lock (`filelock`) around every read and write of the cache. Without `filelock`
the cache stays off rather than risk that. Programs are cached however short their compilation
(`jax_persistent_cache_min_compile_time_secs` = 0): ours are many and small.

With the cache on, the theory's fixed-shape programs also keep their whole executables in
`<folder>/aot` (`<JAX's folder>/trak-sim-aot` when JAX's own is configured; `compilecache.aot`), which skips tracing and lowering in a fresh process as well.

Entry points call `enable_compilation_cache()`: the command line, `run_sweep` (and its Ray
workers) and `figures.make`. The Python API leaves JAX as it is unless asked:
`compilecache.jaxcache.enable_compilation_cache()`.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "TRAK_SIM_JAX_CACHE"
OFF = ("0", "off", "false", "no", "none")
MAX_SIZE = 4 << 30       # bytes; entries are 10 kB to 1 MB, so this is thousands of programs


def cache_dir() -> Path | None:
    """The folder the cache would use (None when disabled by $TRAK_SIM_JAX_CACHE)."""
    import jax
    import jaxlib

    setting = os.environ.get(ENV, "").strip()
    if setting.lower() in OFF:
        return None
    if setting:
        root = Path(setting).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(base) / "trak-sim"
    return root / f"jax-{jax.__version__}-{jaxlib.__version__}"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on the persistent compilation cache in `path` (default `cache_dir()`); return the
    folder in use, or None when it is disabled ($TRAK_SIM_JAX_CACHE=0), cannot be created, or
    `filelock` is missing. A folder already configured for JAX (JAX_COMPILATION_CACHE_DIR, or an
    earlier call) is kept and returned. Never raises for a cache problem (it only costs time)."""
    import jax

    from .aot import set_folder

    configured = jax.config.jax_compilation_cache_dir
    if configured:
        set_folder(Path(configured) / "trak-sim-aot")
        return Path(configured)
    folder = Path(path).expanduser() if path is not None else cache_dir()
    if folder is None:
        return None
    try:
        import filelock  # noqa: F401   (JAX locks the cache with it when a size limit is set)
    except ImportError:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_compilation_cache_max_size", MAX_SIZE)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    set_folder(folder / "aot")             # whole executables of the theory's programs (compilecache.aot)
    return folder
