"""float64 for every computation of trak-sim (docs/conventions.md, "Numbers and randomness").

JAX's `jax_enable_x64` is a process-wide flag that must be set before arrays are created, so it is
switched on by the entry points (`predict`, `predict_spectrum`, `predict_curve`, `simulate`,
`run_replicate`, sweeps, figures, the CLI) rather than as a side effect of importing the package.
"""


def enable_float64() -> None:
    """Switch JAX to float64 (idempotent, cheap when already on)."""
    import jax

    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
