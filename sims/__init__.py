"""Simulation engine: exact LOO, ALO (Newton step), IF and TRAK for ridge GLMs, in JAX.

The engine is imported on first use of a name below (`sims.simulate`, ...), so that importing
`sims.cli` or `sims.runs` for a command that does not simulate stays cheap.
"""


__all__ = ["ESTIMATORS", "VARIANTS", "SimParams", "aggregate", "run_replicate", "simulate", "validate_sim"]


def __getattr__(name):
    if name in __all__:
        from .engine import simulate as _simulate

        return getattr(_simulate, name)
    raise AttributeError(f"module 'sims' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
