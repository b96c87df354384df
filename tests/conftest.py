import atexit
import os
import shutil
import tempfile

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

# One persistent JAX compilation cache for the whole test session: the pytest process creates
# it, and the xdist workers and every subprocess they start (CLI runs, interrupted sweeps, Ray
# workers) inherit it through the environment, so a kernel compiled once is loaded, not
# recompiled, by the next process that needs it. The cache key covers the program, the JAX
# version and the flags. A size limit turns on JAX's file lock around reads and writes (needs
# `filelock`, in the test extra), so no process reads an entry another is still writing.
try:
    import filelock  # noqa: F401
except ImportError:      # without the lock, concurrent processes could read half-written entries
    filelock = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ and filelock is not None:
    _cache = tempfile.mkdtemp(prefix="trak-sim-jax-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(8 << 30))

import jax  # noqa: E402

from theory import enable_float64  # noqa: E402

enable_float64()          # the entry points do it themselves; the tests also call kernels directly
assert jax.config.jax_enable_x64
