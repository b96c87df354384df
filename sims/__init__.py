"""Simulation engine: exact LOO, ALO (Newton step), IF and TRAK for ridge GLMs, in JAX."""

import theory  # noqa: F401  (enables float64 before any array is created)

from .simulate import ESTIMATORS, SimParams, aggregate, run_replicate, simulate, validate_sim  # noqa: E402

__all__ = ["ESTIMATORS", "SimParams", "aggregate", "run_replicate", "simulate", "validate_sim"]
