"""Compile caching for trak-sim, outside the pure theory: JAX's persistent compilation cache
(`jaxcache.enable_compilation_cache`, used by the command line, sweeps and figures) and whole
executables kept across processes (`aot.cached_jit`, used by the theory's fixed-shape programs)."""

from .aot import cached_jit, set_folder  # noqa: F401
from .jaxcache import cache_dir, enable_compilation_cache  # noqa: F401
