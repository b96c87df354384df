import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import theory  # noqa: E402,F401  (turns on float64)

assert jax.config.jax_enable_x64
